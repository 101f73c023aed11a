#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace clusweb::web {

// The sites a clustered-sites file (`clusweb web --clustered-sites FILE`)
// names: clustered from the start, so they never serve before the cluster
// agent grants a permit (ARCHITECTURE.md, "Safety" 4).
struct ClusteredSites {
  std::set<std::string> sites;
  // "FILE:LINE: what is wrong", for lines that name no configured site.
  std::vector<std::string> problems;
};

// Parses the text of the file at `path`: one site name per line, '#' starts
// a comment, blanks around a name and blank lines are ignored. Only names in
// `configured` are taken; every other line is a problem, not an error: the
// file is written by another program and must not stop the service.
ClusteredSites parse_clustered_sites(std::string_view text, std::string_view path,
                                     const std::set<std::string>& configured);

// Reads and parses the file at `path`. A file that does not exist names no
// site; one that cannot be read is an Error.
Result<ClusteredSites> load_clustered_sites(const std::string& path,
                                            const std::set<std::string>& configured);

}  // namespace clusweb::web
