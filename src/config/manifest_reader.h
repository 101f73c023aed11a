#pragma once

// Internal to this component: what the web loader (manifest_loader.cc) and the group loader
// (group_manifest.cc) share to read YAML manifests, so that both report their problems in one
// form (`file:line: Kind "name": field "x.y[2]": what`) with the same "did you mean"
// suggestions. Not a public header: it exposes yaml-cpp, a private dependency of the
// component, and nothing outside src/config includes it.

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "config/manifest_loader.h"
#include "config/web_config.h"

namespace clusweb::config::manifest {

// ---------------------------------------------------------------------------------------------
// Message parts.

// ASCII letters only: names and units in manifests are ASCII, and the locale must not matter.
std::string lowercase(std::string_view text);

// "(did you mean "failback"?)" when one of `known` is within two edits of `name` (ignoring
// letter case), else "(expected one of: a, b, c)" listing `known` without "kind", which every
// document has.
std::string suggestion(std::string_view name, std::span<const std::string_view> known);

// "unknown field (did you mean "failback"?)", with `what` = "field".
std::string unknown_message(std::string_view what, std::string_view name,
                            std::span<const std::string_view> known);

// The dotted path of a field: "limits" + "maxHeaders" -> "limits.maxHeaders"; "" + "name" ->
// "name".
std::string join_path(std::string_view prefix, std::string_view name);

// The path of a list item: "bindings" + 2 -> "bindings[2]".
std::string indexed(std::string_view prefix, std::size_t index);

// `Site "shop"`, or the kind alone when there is no name (WebServer, or not yet known).
std::string subject_of(std::string_view kind, std::string_view name);

// `subject: field "x": what`, or `subject: what` when `field` is empty.
std::string describe_problem(std::string_view subject, std::string_view field,
                             std::string_view what);

// ---------------------------------------------------------------------------------------------
// Problems: everything wrong with a set of manifests, reported together.

class Problems {
 public:
  // Without a file order the problems are sorted by file name, then by line.
  Problems() = default;
  // Sorted by the position of their file among `manifests` (files not listed come after, by
  // name), then by line.
  explicit Problems(const std::vector<ManifestText>& manifests);

  void add(SourceLocation where, std::string text);
  std::size_t count() const { return list_.size(); }
  bool empty() const { return list_.empty(); }

  // The order of to_error(), for callers that report the later of two places.
  bool before(const SourceLocation& a, const SourceLocation& b) const;

  // Every problem, one per line, each starting with its location; `where` is the location of
  // the first. Only when there is at least one problem.
  Error to_error();

 private:
  struct Problem {
    SourceLocation where;
    std::string text;
  };

  std::size_t rank(const std::string& file) const;

  std::vector<std::string> file_order_;
  std::vector<Problem> list_;
};

// ---------------------------------------------------------------------------------------------
// Reading YAML.

// One value in a document, with its dotted path ("limits.maxHeaderBytes", "bindings[2].url")
// and the location of its key (or of the list item).
struct Field {
  std::string path;
  YAML::Node value;
  SourceLocation where;
};

// Parses the documents of `manifest` and calls add(document) for each one that is not empty.
// Invalid YAML is a problem at its line: for the whole file (then false is returned and no
// document is read), or for one document (the others are still read).
bool read_documents(const ManifestText& manifest, Problems& problems,
                    const std::function<void(const YAML::Node&)>& add);

// The name field of a document, before it is validated, to label its problems.
std::string peek_name(const YAML::Node& document);

// Reads the fields of one manifest file's documents, reporting each problem at its line as
// `subject: field "path": what`. The loaders add the readers of their own kinds of values.
class Reader {
 public:
  Reader(std::string file, Problems& problems);

  SourceLocation at(const YAML::Node& node) const;

  // What the following problems are about: `Site "shop"`, `Group "web"`, "document".
  void set_subject(std::string subject) { subject_ = std::move(subject); }

  void fail(const Field& field, std::string_view what) { fail_at(field.where, field.path, what); }
  void fail_at(const SourceLocation& where, std::string_view path, std::string_view what);

  // The kind of a document, when it is one of `kinds`; otherwise reports (with the subject
  // "document") that the document is no map, has no kind, or an unknown one, and returns
  // nothing. `kinds` are listed in that order in the messages.
  std::optional<std::string> document_kind(const Field& document,
                                           std::span<const std::string_view> kinds);

  // Calls read(key, field) for each entry of the map `field` whose key is in `known`;
  // reports non-map values, unknown and duplicate keys, and missing `required` keys.
  template <class Read>
  void read_map(const Field& field, std::initializer_list<std::string_view> known,
                std::initializer_list<std::string_view> required, Read&& read) {
    if (!field.value.IsMap()) {
      fail(field, "must be a map");
      return;
    }
    std::map<std::string, SourceLocation> seen;
    for (auto it = field.value.begin(); it != field.value.end(); ++it) {
      const SourceLocation where = at(it->first);
      if (!it->first.IsScalar()) {
        fail_at(where, field.path, "field names must be strings");
        continue;
      }
      const std::string& name = it->first.Scalar();
      const std::string path = join_path(field.path, name);
      const auto [first, inserted] = seen.emplace(name, where);
      if (!inserted) {
        fail_at(where, path,
                fmt::format("duplicate field, first set at line {}", first->second.line));
        continue;
      }
      if (std::find(known.begin(), known.end(), name) == known.end()) {
        fail_at(where, path,
                unknown_message("field", name,
                                std::span<const std::string_view>(known.begin(), known.size())));
        continue;
      }
      read(std::string_view(name), Field{path, it->second, where});
    }
    for (std::string_view name : required) {
      if (!seen.contains(std::string(name))) {
        fail_at(field.where, join_path(field.path, name), "missing required field");
      }
    }
  }

  // Calls read(item) for each item of the list `field`, at path "field.path[i]"; reports a
  // value that is no list with `not_a_list` ("must be a list of bindings") and returns false.
  template <class Read>
  bool read_list(const Field& field, std::string_view not_a_list, Read&& read) {
    if (!field.value.IsSequence()) {
      fail(field, not_a_list);
      return false;
    }
    std::size_t index = 0;
    for (const YAML::Node& item : field.value) {
      read(Field{indexed(field.path, index++), item, at(item)});
    }
    return true;
  }

  std::optional<std::string> string_value(const Field& field);

  // A duration ("90s", base/duration.h) greater than 0.
  std::optional<std::chrono::milliseconds> duration_value(const Field& field);

 private:
  std::string file_;
  Problems& problems_;
  std::string subject_;
};

}  // namespace clusweb::config::manifest
