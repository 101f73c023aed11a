#include "cli/cli.h"

int main(int argc, char** argv) { return clusweb::cli::run(argc, argv); }
