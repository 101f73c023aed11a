#include "config/manifest_reader.h"

#include <yaml-cpp/eventhandler.h>

#include <new>
#include <sstream>

#include "base/duration.h"

namespace clusweb::config::manifest {
namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// yaml-cpp's marks are 0-based and null for nodes built in code.
SourceLocation location_of(const std::string& file, const YAML::Mark& mark) {
  return SourceLocation{file, mark.is_null() ? 0 : mark.line + 1};
}

// Where each document starts, and nothing else: a first pass over the text
// that finds where yaml-cpp 0.7 stops making progress. On some malformed input
// (a ',' outside [ ] or { }: ",", "- a\n,b") its parser starts an empty
// document at the same place again and again, and LoadAll() collects them
// until memory runs out.
class DocumentStarts final : public YAML::EventHandler {
 public:
  YAML::Mark start;

  void OnDocumentStart(const YAML::Mark& mark) override { start = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& /*mark*/, YAML::anchor_t /*anchor*/) override {}
  void OnAlias(const YAML::Mark& /*mark*/, YAML::anchor_t /*anchor*/) override {}
  void OnScalar(const YAML::Mark& /*mark*/, const std::string& /*tag*/, YAML::anchor_t /*anchor*/,
                const std::string& /*value*/) override {}
  void OnSequenceStart(const YAML::Mark& /*mark*/, const std::string& /*tag*/,
                       YAML::anchor_t /*anchor*/, YAML::EmitterStyle::value /*style*/) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& /*mark*/, const std::string& /*tag*/, YAML::anchor_t /*anchor*/,
                  YAML::EmitterStyle::value /*style*/) override {}
  void OnMapEnd() override {}
};

// The place where the parser would loop, or nullopt. Syntax errors are left
// to the real parse, which reports them.
std::optional<YAML::Mark> stuck_at(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentStarts starts;
  int previous = -1;
  try {
    while (parser.HandleNextDocument(starts)) {
      if (starts.start.pos == previous) return starts.start;
      previous = starts.start.pos;
    }
  } catch (const YAML::Exception&) {
    return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Message parts.

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string suggestion(std::string_view name, std::span<const std::string_view> known) {
  std::string_view best;
  std::size_t best_distance = 3;
  for (std::string_view candidate : known) {
    const std::size_t distance = edit_distance(lowercase(name), lowercase(candidate));
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate;
    }
  }
  if (!best.empty()) return fmt::format("(did you mean \"{}\"?)", best);
  std::string list;
  for (std::string_view candidate : known) {
    if (candidate == "kind") continue;
    if (!list.empty()) list += ", ";
    list += candidate;
  }
  return fmt::format("(expected one of: {})", list);
}

std::string unknown_message(std::string_view what, std::string_view name,
                            std::span<const std::string_view> known) {
  return fmt::format("unknown {} {}", what, suggestion(name, known));
}

std::string join_path(std::string_view prefix, std::string_view name) {
  if (prefix.empty()) return std::string(name);
  return fmt::format("{}.{}", prefix, name);
}

std::string indexed(std::string_view prefix, std::size_t index) {
  return fmt::format("{}[{}]", prefix, index);
}

std::string subject_of(std::string_view kind, std::string_view name) {
  if (name.empty()) return std::string(kind);
  return fmt::format("{} \"{}\"", kind, name);
}

std::string describe_problem(std::string_view subject, std::string_view field,
                             std::string_view what) {
  if (field.empty()) return fmt::format("{}: {}", subject, what);
  return fmt::format("{}: field \"{}\": {}", subject, field, what);
}

// ---------------------------------------------------------------------------------------------
// Problems.

Problems::Problems(const std::vector<ManifestText>& manifests) {
  file_order_.reserve(manifests.size());
  for (const ManifestText& manifest : manifests) file_order_.push_back(manifest.path);
}

void Problems::add(SourceLocation where, std::string text) {
  list_.push_back(Problem{std::move(where), std::move(text)});
}

bool Problems::before(const SourceLocation& a, const SourceLocation& b) const {
  const std::size_t rank_a = rank(a.file);
  const std::size_t rank_b = rank(b.file);
  if (rank_a != rank_b) return rank_a < rank_b;
  if (a.file != b.file) return a.file < b.file;
  return a.line < b.line;
}

Error Problems::to_error() {
  std::stable_sort(list_.begin(), list_.end(),
                   [this](const Problem& a, const Problem& b) { return before(a.where, b.where); });
  std::string message;
  for (const Problem& problem : list_) {
    if (!message.empty()) message += '\n';
    const std::string location = problem.where.describe();
    message += location.empty() ? problem.text : location + ": " + problem.text;
  }
  return Error{std::move(message), list_.front().where.describe(), 0};
}

std::size_t Problems::rank(const std::string& file) const {
  const auto found = std::find(file_order_.begin(), file_order_.end(), file);
  return static_cast<std::size_t>(found - file_order_.begin());
}

// ---------------------------------------------------------------------------------------------
// Reading YAML.

bool read_documents(const ManifestText& manifest, Problems& problems,
                    const std::function<void(const YAML::Node&)>& add) {
  if (const std::optional<YAML::Mark> stuck = stuck_at(manifest.text)) {
    const std::size_t at = static_cast<std::size_t>(stuck->pos);
    const char found = at < manifest.text.size() ? manifest.text[at] : '\0';
    problems.add(location_of(manifest.path, *stuck),
                 found == ',' ? std::string("invalid YAML: ',' outside a [ ] or { } list")
                              : fmt::format("invalid YAML: unexpected {}",
                                            found == '\0' ? std::string("end of file")
                                                          : fmt::format("'{}'", found)));
    return false;
  }
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(manifest.text);
  } catch (const YAML::Exception& e) {
    problems.add(location_of(manifest.path, e.mark), fmt::format("invalid YAML: {}", e.msg));
    return false;
  } catch (const std::bad_alloc&) {
    problems.add(SourceLocation{manifest.path, 0}, "invalid YAML: the parser ran out of memory");
    return false;
  }
  for (const YAML::Node& document : documents) {
    if (document.IsNull()) continue;  // empty document, e.g. after a trailing "---"
    // An error yaml-cpp raises while one document is read spares the other documents.
    try {
      add(document);
    } catch (const YAML::Exception& e) {
      problems.add(location_of(manifest.path, document.Mark()),
                   fmt::format("invalid YAML: {}", e.msg));
    }
  }
  return true;
}

std::string peek_name(const YAML::Node& document) {
  for (auto it = document.begin(); it != document.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == "name" && it->second.IsScalar()) {
      return it->second.Scalar();
    }
  }
  return "";
}

Reader::Reader(std::string file, Problems& problems)
    : file_(std::move(file)), problems_(problems) {}

SourceLocation Reader::at(const YAML::Node& node) const { return location_of(file_, node.Mark()); }

void Reader::fail_at(const SourceLocation& where, std::string_view path, std::string_view what) {
  problems_.add(where, describe_problem(subject_, path, what));
}

std::optional<std::string> Reader::document_kind(const Field& document,
                                                 std::span<const std::string_view> kinds) {
  set_subject("document");
  if (!document.value.IsMap()) {
    fail(document, "must be a map with a \"kind\" field");
    return std::nullopt;
  }
  std::optional<Field> kind;
  for (auto it = document.value.begin(); it != document.value.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == "kind") {
      kind = Field{"kind", it->second, at(it->first)};
      break;
    }
  }
  if (!kind) {
    // "(Site, ApplicationPool, WebServer or Group)"
    std::string list;
    for (std::size_t i = 0; i < kinds.size(); ++i) {
      if (i > 0) list += i + 1 == kinds.size() ? " or " : ", ";
      list += kinds[i];
    }
    fail_at(document.where, "kind", fmt::format("missing required field ({})", list));
    return std::nullopt;
  }
  auto name = string_value(*kind);
  if (!name) return std::nullopt;
  if (std::find(kinds.begin(), kinds.end(), *name) == kinds.end()) {
    fail(*kind, unknown_message(fmt::format("kind \"{}\"", *name), *name, kinds));
    return std::nullopt;
  }
  return name;
}

std::optional<std::string> Reader::string_value(const Field& field) {
  if (!field.value.IsScalar()) {
    fail(field, "must be a string");
    return std::nullopt;
  }
  const std::string& text = field.value.Scalar();
  if (text.find('\0') != std::string::npos) {
    fail(field, "must not contain NUL characters");
    return std::nullopt;
  }
  return text;
}

std::optional<std::chrono::milliseconds> Reader::duration_value(const Field& field) {
  if (!field.value.IsScalar()) {
    fail(field, "must be a duration such as \"90s\"");
    return std::nullopt;
  }
  auto duration = parse_duration(field.value.Scalar());
  if (!duration.ok()) {
    fail(field, duration.error().message);
    return std::nullopt;
  }
  if (*duration <= std::chrono::milliseconds::zero()) {
    fail(field, "must be greater than 0");
    return std::nullopt;
  }
  return *duration;
}

}  // namespace clusweb::config::manifest
