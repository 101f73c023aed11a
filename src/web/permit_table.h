#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace clusweb::web {

// The serving permits of clustered sites (ARCHITECTURE.md, "Safety" 4). A
// clustered site may serve only while its permit is live: the cluster agent
// grants a deadline on CLOCK_BOOTTIME and keeps moving it ahead; once it
// passes (or is set in the past: revoked) the site must stop.
//
// A site is clustered when the clustered-sites file lists it or once it was
// granted a permit; it stays so until it leaves the configuration. Pure
// bookkeeping: the time comes from `now` (CLOCK_BOOTTIME in ms), the owner
// acts on what it reports. Not thread-safe.
class PermitTable {
 public:
  using Now = std::function<std::int64_t()>;

  explicit PermitTable(Now now);

  // The sites of the clustered-sites file, replacing the previous list.
  void set_listed(const std::set<std::string>& sites);
  // Forgets every site not in `configured`, listed or granted.
  void retain(const std::set<std::string>& configured);

  // What a grant changed.
  struct Grant {
    bool was_live = false;
    bool live = false;
  };
  // Sets the permit of `site` to end at `deadline_ms`; a deadline that is not
  // in the future revokes it. The site is clustered from now on.
  Grant grant(const std::string& site, std::int64_t deadline_ms);

  bool clustered(const std::string& site) const;
  // True when `site` may serve now: it is not clustered, or its permit is live.
  bool may_serve(const std::string& site) const;
  // Milliseconds the permit of `site` has left, 0 once it expired or was
  // revoked; nullopt when the site never had one.
  std::optional<std::int64_t> remaining_ms(const std::string& site) const;

  // The sites whose permit has run out since it was granted; each lapse is
  // reported once (a revoking grant counts as reported).
  std::vector<std::string> take_lapsed();
  // When take_lapsed() may next report something: the earliest deadline not
  // yet reported; nullopt when there is none.
  std::optional<std::int64_t> next_deadline() const;

  // Every clustered site -> the deadline the front end enforces (0 when the
  // site never had a permit).
  std::map<std::string, std::int64_t> deadlines() const;

 private:
  struct Entry {
    bool listed = false;
    std::optional<std::int64_t> deadline_ms;
    bool lapse_reported = false;
  };

  // Drops entries that no longer make their site clustered.
  void prune();

  Now now_;
  std::map<std::string, Entry> entries_;
};

}  // namespace clusweb::web
