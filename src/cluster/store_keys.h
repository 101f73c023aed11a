#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "cluster/model.h"
#include "cluster/placement.h"

// Where the cluster keeps its state in the store, and how the values the
// agents share are written. Every key lives under /clusweb/<cluster>/:
//
//   nodes/<node>        node record, bound to the node's lease (membership)
//   node-admin/<node>   paused / drained (no lease)
//   coordinator         election key, bound to the holder's lease
//   groups/<group>      group spec
//   placement/<group>   PlacementValue, written only by the coordinator
//   owners/<group>      owner node, bound to its lease; create_revision = fencing token
//   status/<group>      group and resource states (written by the owner, token-guarded)
//   released/<group>    the last owner stopped everything before it let go
//   failures/<group>    FailureHistory: resource-failure failovers
//   moves/<group>       `group move`: the target node ("" = any other); pending
//                       until an ownership newer than the request exists
//   offline/<group>     `group offline`: present = place nowhere
//   unmanaged/<group>   `group unmanage`: maintenance (Unmanaged), the cluster stops acting
//   events-next         the next event sequence number (events/ are written
//                       with a compare on it, so sequences never repeat)
//   events/<sequence>   the bounded event log
namespace clusweb::cluster {

// Names of clusters, nodes and groups: 1 to 64 of [A-Za-z0-9._-], not "." or
// "..", so that a name is always exactly one key segment.
Status check_name(std::string_view kind, std::string_view name);

class StoreKeys {
 public:
  // `cluster` must pass check_name.
  explicit StoreKeys(std::string_view cluster);

  const std::string& root() const { return root_; }  // "/clusweb/<cluster>/"

  std::string nodes() const { return root_ + "nodes/"; }
  std::string node(std::string_view name) const { return nodes() + std::string(name); }
  std::string node_admin(std::string_view name) const;
  std::string coordinator() const { return root_ + "coordinator"; }
  std::string groups() const { return root_ + "groups/"; }
  std::string group(std::string_view name) const { return groups() + std::string(name); }
  std::string placements() const { return root_ + "placement/"; }
  std::string placement(std::string_view group) const;
  std::string owners() const { return root_ + "owners/"; }
  std::string owner(std::string_view group) const { return owners() + std::string(group); }
  std::string statuses() const { return root_ + "status/"; }
  std::string status(std::string_view group) const { return statuses() + std::string(group); }
  std::string released(std::string_view group) const;
  std::string failures(std::string_view group) const;
  std::string moves() const { return root_ + "moves/"; }
  std::string move(std::string_view group) const { return moves() + std::string(group); }
  std::string offlines() const { return root_ + "offline/"; }
  std::string offline(std::string_view group) const { return offlines() + std::string(group); }
  std::string unmanageds() const { return root_ + "unmanaged/"; }
  std::string unmanaged(std::string_view group) const { return unmanageds() + std::string(group); }
  // The shared web configuration (config/shared_config.h): every site and pool in one value,
  // so that a change is one atomic write; its mod_revision is the configuration's revision.
  std::string config_web() const { return root_ + "config/web"; }
  // What each node serves of it (written by the node's agent).
  std::string config_statuses() const { return root_ + "config-status/"; }
  std::string config_status(std::string_view node) const {
    return config_statuses() + std::string(node);
  }
  // The cluster's data key, wrapped by a key derived from the administrator's password
  // (secrets/data_key.h: the JSON record of wrap()).
  std::string data_key() const { return root_ + "secrets/data-key"; }
  std::string events_next() const { return root_ + "events-next"; }
  std::string events() const { return root_ + "events/"; }
  // Zero-padded so that key order is sequence order.
  std::string event(uint64_t sequence) const;

  // The name after `prefix` (one of the prefixes above) when `key` is
  // directly under it; nullopt for other keys.
  static std::optional<std::string_view> name_under(std::string_view prefix, std::string_view key);

 private:
  std::string root_;
};

// placement/<group>. `failovers_seen` is the length of the group's failure
// history when the coordinator decided: after a failover the value changes
// even when the node does not, which tells the node that released the group
// that a new decision was made.
struct PlacementValue {
  std::string node;  // empty = nowhere
  uint64_t failovers_seen = 0;
  std::string reason;
  bool operator==(const PlacementValue&) const = default;
};
std::string encode(const PlacementValue& value);
// `key` names the value in errors.
Result<PlacementValue> decode_placement(std::string_view text, std::string_view key);

// failures/<group>: the resource-failure failovers, oldest first, with the
// reason each release gave.
struct FailureHistory {
  struct Entry {
    FailoverRecord record;
    std::string reason;
    bool operator==(const Entry&) const = default;
  };
  std::vector<Entry> entries;

  // Drops soft failovers older than `keep` before `now` (they no longer
  // count toward any threshold), so the value stays small. Hard and fatal
  // ones stay until an administrator clears the history.
  void trim(WallTime now, Milliseconds keep);
  std::vector<FailoverRecord> records() const;
  bool operator==(const FailureHistory&) const = default;
};
std::string encode(const FailureHistory& history);
Result<FailureHistory> decode_failures(std::string_view text, std::string_view key);

// unmanaged/<group>: {"group": true} or {"resources": ["site", ...]}.
std::string encode(const Unmanaged& value);
Result<Unmanaged> decode_unmanaged(std::string_view text, std::string_view key);

// groups/<group>: the group spec as JSON with the manifest's field names
// (preferredOwners, failoverThreshold, resources[].policy.restartThreshold,
// durations as "1s", "15m", ...). Decoding validates the group.
std::string encode(const GroupSpec& group);
Result<GroupSpec> decode_group(std::string_view text, std::string_view key);

}  // namespace clusweb::cluster
