#pragma once

#include <map>
#include <string>
#include <string_view>

namespace clusweb::http {

// File name -> Content-Type. A built-in table of common web types (text types carry
// "; charset=utf-8"), optionally overridden or extended per site. Immutable after construction,
// so one instance may be shared by threads.
class MimeTypes {
 public:
  static constexpr std::string_view kDefaultType = "application/octet-stream";

  MimeTypes();
  // `overrides`: extension without the dot (a leading dot is tolerated; any case) -> type.
  // Replaces or extends the built-in table.
  explicit MimeTypes(const std::map<std::string, std::string>& overrides);

  // The type for `filename` (a bare name or a path) by its last extension, compared without
  // regard to case; kDefaultType when there is none or it is unknown. A leading dot does not
  // start an extension (".profile" has none). The view stays valid while *this lives.
  std::string_view lookup(std::string_view filename) const;

 private:
  struct CaseInsensitiveLess {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const;
  };
  std::map<std::string, std::string, CaseInsensitiveLess> types_;
};

}  // namespace clusweb::http
