// libFuzzer target for the manifest reader and the web configuration loader: any bytes as one
// manifest file must end in a configuration or in problems that name the file, never in a
// crash, a hang or memory without bound (yaml-cpp 0.7 has inputs that loop; manifest_reader.cc
// stops them). Filesystem checks are off: the text is all there is.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "base/result.h"
#include "config/manifest_loader.h"

#define FUZZ_CHECK(condition)                                                               \
  do {                                                                                      \
    if (!(condition)) {                                                                     \
      std::fprintf(stderr, "manifest_fuzzer: %s:%d: %s\n", __FILE__, __LINE__, #condition); \
      __builtin_trap();                                                                     \
    }                                                                                       \
  } while (false)

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = "/fuzz/web.yaml";
  std::vector<clusweb::config::ManifestText> manifests{
      {path, std::string(reinterpret_cast<const char*>(data), size)}};
  clusweb::config::LoadOptions options;
  options.check_filesystem = false;
  clusweb::Result<clusweb::config::WebConfig> loaded =
      clusweb::config::load_web_config(manifests, options);
  if (!loaded.ok()) {
    // Every problem is located in the one file there is.
    FUZZ_CHECK(loaded.error().message.rfind(path, 0) == 0);
    FUZZ_CHECK(loaded.error().where.rfind(path, 0) == 0);
  }
  return 0;
}
