#include "web/permit_table.h"

#include <algorithm>
#include <utility>

namespace clusweb::web {

PermitTable::PermitTable(Now now) : now_(std::move(now)) {}

void PermitTable::set_listed(const std::set<std::string>& sites) {
  for (auto& [name, entry] : entries_) entry.listed = false;
  for (const auto& name : sites) entries_[name].listed = true;
  prune();
}

void PermitTable::retain(const std::set<std::string>& configured) {
  std::erase_if(entries_, [&](const auto& item) { return configured.count(item.first) == 0; });
}

PermitTable::Grant PermitTable::grant(const std::string& site, std::int64_t deadline_ms) {
  const std::int64_t now = now_();
  Entry& entry = entries_[site];
  Grant result;
  result.was_live = entry.deadline_ms && *entry.deadline_ms > now;
  result.live = deadline_ms > now;
  entry.deadline_ms = deadline_ms;
  // The caller acts on a revocation itself; the lapse of a live permit is
  // reported when its deadline passes.
  entry.lapse_reported = !result.live;
  return result;
}

bool PermitTable::clustered(const std::string& site) const { return entries_.count(site) != 0; }

bool PermitTable::may_serve(const std::string& site) const {
  auto it = entries_.find(site);
  if (it == entries_.end()) return true;
  return it->second.deadline_ms && *it->second.deadline_ms > now_();
}

std::optional<std::int64_t> PermitTable::remaining_ms(const std::string& site) const {
  auto it = entries_.find(site);
  if (it == entries_.end() || !it->second.deadline_ms) return std::nullopt;
  return std::max<std::int64_t>(0, *it->second.deadline_ms - now_());
}

std::vector<std::string> PermitTable::take_lapsed() {
  const std::int64_t now = now_();
  std::vector<std::string> lapsed;
  for (auto& [name, entry] : entries_) {
    if (entry.deadline_ms && !entry.lapse_reported && *entry.deadline_ms <= now) {
      entry.lapse_reported = true;
      lapsed.push_back(name);
    }
  }
  return lapsed;
}

std::optional<std::int64_t> PermitTable::next_deadline() const {
  std::optional<std::int64_t> next;
  for (const auto& [name, entry] : entries_) {
    if (!entry.deadline_ms || entry.lapse_reported) continue;
    if (!next || *entry.deadline_ms < *next) next = entry.deadline_ms;
  }
  return next;
}

std::map<std::string, std::int64_t> PermitTable::deadlines() const {
  std::map<std::string, std::int64_t> out;
  for (const auto& [name, entry] : entries_) out.emplace(name, entry.deadline_ms.value_or(0));
  return out;
}

void PermitTable::prune() {
  std::erase_if(entries_,
                [](const auto& item) { return !item.second.listed && !item.second.deadline_ms; });
}

}  // namespace clusweb::web
