#include "cli/config_commands.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/admin_client.h"

namespace clusweb::cli {
namespace {

// A member of `object`, or null when absent.
const Json& value_or_null(const Json& object, const char* key) {
  static const Json null;
  const Json* value = member(object, key);
  return value != nullptr ? *value : null;
}

// A value of a diff as written in the text form: the JSON text.
std::string shown(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

bool is_empty_text(const Json& value) {
  return value.is_string() && value.get_ref<const std::string&>().empty();
}

// One manifest value in YAML: flow style, strings double-quoted (YAML reads JSON's escapes).
std::string yaml_value(const Json& value) { return shown(value); }

void append_document(std::string& text, const char* kind, const Json& object) {
  text += "---\n";
  if (const Json* where = member(object, "where"); where != nullptr && where->is_object()) {
    const std::string file = text_of(*where, "file", "");
    if (!file.empty()) text += fmt::format("# from {}:{}\n", file, count_of(*where, "line"));
  }
  text += fmt::format("kind: {}\nname: {}\n", kind, yaml_value(value_or_null(object, "name")));
  for (const auto& [field, value] : object.items()) {
    // Empty texts are the defaults (no access log, the agent's user): left out, as written.
    if (field == "where" || field == "name" || is_empty_text(value)) continue;
    if (field == "bindings" && value.is_array()) {
      // A binding without TLS is its URL alone, as manifests write it.
      Json bindings = Json::array();
      for (const Json& binding : value) {
        Json written = binding;
        written.erase("where");
        for (const char* tls : {"certificate", "key"}) {
          if (written.contains(tls) && is_empty_text(written[tls])) {
            written.erase(tls);
          }
        }
        bindings.push_back(written.size() == 1 && written.contains("url") ? written["url"]
                                                                          : written);
      }
      text += fmt::format("{}: {}\n", field, yaml_value(bindings));
      continue;
    }
    if (field == "applications" && value.is_array()) {
      Json applications = value;
      for (Json& application : applications) application.erase("where");
      text += fmt::format("{}: {}\n", field, yaml_value(applications));
      continue;
    }
    text += fmt::format("{}: {}\n", field, yaml_value(value));
  }
}

}  // namespace

std::string format_config_changes(const Json* changes) {
  if (changes == nullptr || !changes->is_array() || changes->empty()) return "no change\n";
  std::string text;
  for (const Json& change : *changes) {
    const std::string type = text_of(change, "change");
    text += fmt::format("{}/{}: {}\n", text_of(change, "kind"), text_of(change, "name"), type);
    for (const Json* field : elements_of(change, "fields")) {
      const Json& before = value_or_null(*field, "before");
      const Json& after = value_or_null(*field, "after");
      const std::string path = text_of(*field, "path");
      // Whole objects, and fields one side lacks, show as added (+) or removed (-).
      if (type == "created" || (type != "removed" && before.is_null())) {
        text += fmt::format("    + {}: {}\n", path, shown(after));
      } else if (type == "removed" || after.is_null()) {
        text += fmt::format("    - {}: {}\n", path, shown(before));
      } else {
        text += fmt::format("    {}: {} -> {}\n", path, shown(before), shown(after));
      }
    }
  }
  return text;
}

Result<std::string> format_config_diff(std::string_view json) {
  Result<Json> doc = parse_object(json, kClusterAgent);
  if (!doc.ok()) return doc.error();
  return fmt::format("from revision {} to revision {}\n", count_of(*doc, "from"),
                     count_of(*doc, "to")) +
         format_config_changes(member(*doc, "changes"));
}

Result<std::string> format_config_history(std::string_view json) {
  Result<Json> doc = parse_object(json, kClusterAgent);
  if (!doc.ok()) return doc.error();
  std::vector<Row> rows{{"REVISION", "CHANGES"}};
  for (const Json* revision : elements_of(*doc, "revisions")) {
    const Json& changes = value_or_null(*revision, "changes");
    rows.push_back({count_of(*revision, "revision"),
                    changes.is_null() ? "(the revision before is not in the store's history)"
                                      : text_of(*revision, "summary", "no change")});
  }
  if (rows.size() == 1) return std::string("no shared configuration yet\n");
  return render_table(rows) + fmt::format("history ends at: {}\n", text_of(*doc, "end"));
}

Result<std::string> format_config_manifests(std::string_view json) {
  Result<Json> doc = parse_object(json, kClusterAgent);
  if (!doc.ok()) return doc.error();
  std::string text =
      fmt::format("# shared configuration, revision {}\n", count_of(*doc, "revision"));
  for (const Json* site : elements_of(*doc, "sites")) append_document(text, "Site", *site);
  for (const Json* pool : elements_of(*doc, "pools"))
    append_document(text, "ApplicationPool", *pool);
  return text;
}

Result<std::string> format_config_write(std::string_view json, bool dry_run) {
  Result<Json> doc = parse_object(json, kClusterAgent);
  if (!doc.ok()) return doc.error();
  std::string text = dry_run ? "dry run: nothing was written\n"
                             : fmt::format("revision {}\n", count_of(*doc, "revision"));
  return text + format_config_changes(member(*doc, "changes"));
}

Result<Json> config_objects(const std::vector<std::string>& arguments) {
  Json objects = {{"sites", Json::array()}, {"pools", Json::array()}};
  for (const std::string& argument : arguments) {
    const auto slash = argument.find('/');
    const std::string kind = argument.substr(0, slash);
    if (slash == std::string::npos || slash + 1 == argument.size() ||
        (kind != "site" && kind != "pool")) {
      return make_error("\"{}\": name objects as site/NAME or pool/NAME", argument);
    }
    objects[kind == "site" ? "sites" : "pools"].push_back(argument.substr(slash + 1));
  }
  return objects;
}

}  // namespace clusweb::cli
