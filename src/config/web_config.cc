#include "config/web_config.h"

#include <fmt/format.h>

namespace clusweb::config {
namespace {

std::string_view scheme_name(Scheme scheme) { return scheme == Scheme::kHttps ? "https" : "http"; }

// IPv6 literals need brackets so the port separator stays unambiguous.
std::string address_for_url(const std::string& address) {
  if (address.find(':') != std::string::npos) return "[" + address + "]";
  return address;
}

// Equality of the parts of a binding that matter to the server; `where` only says where it
// was written, so moving a binding inside a manifest is not a change.
bool same_binding(const Binding& a, const Binding& b) {
  return a.scheme == b.scheme && a.address == b.address && a.port == b.port && a.host == b.host &&
         a.certificate == b.certificate && a.key == b.key &&
         a.certificate_pem == b.certificate_pem && a.key_sealed == b.key_sealed;
}

bool same_application(const Application& a, const Application& b) {
  return a.path == b.path && a.pool == b.pool;
}

template <class T, class Same>
bool same_lists(const std::vector<T>& a, const std::vector<T>& b, Same same) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!same(a[i], b[i])) return false;
  }
  return true;
}

}  // namespace

std::string SourceLocation::describe() const {
  if (line == 0) return file;
  return fmt::format("{}:{}", file, line);
}

std::string Binding::url() const {
  std::string url = listener_key();
  if (!host.empty()) url += "/" + host;
  return url;
}

std::string Binding::listener_key() const {
  return fmt::format("{}://{}:{}", scheme_name(scheme), address_for_url(address), port);
}

bool Site::operator==(const Site& other) const {
  return name == other.name && root == other.root &&
         same_lists(bindings, other.bindings, same_binding) &&
         same_lists(applications, other.applications, same_application) &&
         auto_start == other.auto_start && default_documents == other.default_documents &&
         directory_browsing == other.directory_browsing && access_log == other.access_log &&
         mime_types == other.mime_types;
}

bool ApplicationPool::operator==(const ApplicationPool& other) const {
  return name == other.name && command == other.command &&
         working_directory == other.working_directory && environment == other.environment &&
         secret_environment == other.secret_environment &&
         secret_environment_sealed == other.secret_environment_sealed && user == other.user &&
         processes == other.processes && socket == other.socket && auto_start == other.auto_start &&
         startup_time_limit == other.startup_time_limit &&
         shutdown_time_limit == other.shutdown_time_limit &&
         rapid_fail_protection == other.rapid_fail_protection &&
         rapid_fail_max_crashes == other.rapid_fail_max_crashes &&
         rapid_fail_interval == other.rapid_fail_interval && queue_length == other.queue_length;
}

}  // namespace clusweb::config
