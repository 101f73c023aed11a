#pragma once

#include <sys/types.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "resources/resource.h"

namespace clusweb::resources {

// --- /proc parsing: pure functions, driven by fixture text in tests ---

// One line of /proc/<pid>/mountinfo (proc(5)), path fields decoded.
struct MountEntry {
  int mount_id = 0;
  int parent_id = 0;
  unsigned major = 0;  // st_dev of the filesystem (for block filesystems, the device)
  unsigned minor = 0;
  std::string root;                          // the directory of the filesystem mounted here
  std::string mount_point;                   // relative to the reading process's root
  std::string mount_options;                 // per-mount: "rw,nosuid,relatime"
  std::vector<std::string> optional_fields;  // "shared:12", "master:3", ...
  std::string fstype;                        // "ext4", "nfs4", "tmpfs"
  std::string source;                        // "/dev/loop3", "srv:/export", "tmpfs"
  std::string super_options;                 // per-superblock: "rw,size=1024k"
};

// Decodes the kernel's octal escapes in a mountinfo (or maps) path field:
// "\040" space, "\011" tab, "\012" newline, "\134" backslash. A backslash
// not followed by three octal digits stays as it is.
std::string unescape_mount_field(std::string_view field);

// One line, without its newline. The error says what is wrong with it.
Result<MountEntry> parse_mountinfo_line(std::string_view line);
// A whole file; empty lines are skipped, any malformed line is an error
// naming its line number.
Result<std::vector<MountEntry>> parse_mountinfo(std::string_view text);

// The mount(2) arguments for a comma-separated option list, split as mount(8)
// splits the common ones: ro/rw, noatime/atime, nodiratime/diratime,
// relatime/norelatime, strictatime/nostrictatime, lazytime/nolazytime,
// nodev/dev, nosuid/suid, noexec/exec, sync/async, dirsync, silent/loud become
// flags (the later of a pair wins); "defaults" and options only mount(8)
// reads ("auto", "noauto", "nofail", "_netdev", "user", "users", "nouser",
// "owner", "group", "x-*", "comment=*") are dropped; everything else goes to
// `data` in its order (a comma inside double quotes does not split).
// "bind", "rbind", "move", "remount", "make-*" and the propagation names are
// refused: the resource makes plain mounts only.
struct MountOptions {
  unsigned long flags = 0;  // MS_* for mount(2)
  std::string data;         // the filesystem-specific rest, comma-separated
};
Result<MountOptions> parse_mount_options(std::string_view options);

// True when `path` (absolute, as readlink() of /proc/<pid>/{cwd,root,fd/N}
// gives it, a " (deleted)" suffix allowed) is `mount_point` or below it.
// "/srv/database" is not below "/srv/data".
bool path_on_mount(std::string_view path, std::string_view mount_point);

// The file paths of a /proc/<pid>/maps text (anonymous and "[heap]"-style
// mappings left out), decoded, in order, duplicates kept.
std::vector<std::string> mapped_paths(std::string_view maps);

// A process that keeps a mount busy.
struct MountHolder {
  pid_t pid = 0;
  std::string name;  // /proc/<pid>/comm
  std::string what;  // the first thing found on the mount: "cwd /srv/data/x"
};

// Scans `proc_root` ("/proc", or a fixture tree with the same layout:
// <pid>/cwd, <pid>/root and <pid>/fd/* as symlinks, <pid>/maps and
// <pid>/comm as files) for processes whose cwd, root, open files or mapped
// files are on `mount_point`, by path: readlink() of the /proc links never
// touches the filesystem they point to, so a hung NFS server cannot block
// the scan. Processes that vanish during the scan are skipped; `skip_pid`
// (the agent itself) is never reported. Ordered by pid. With `mount_ids`
// (the ids of the mount and of those on it), an open file whose path is on
// the mount point but whose fdinfo names another mount is the directory
// underneath (opened before the mount), not a holder.
std::vector<MountHolder> find_mount_holders(const std::string& proc_root,
                                            std::string_view mount_point, pid_t skip_pid,
                                            const std::set<int>& mount_ids = {});

// The `mount` resource type: a filesystem mounted for a group (WSFC's
// cluster disk).
//
// Parameters: `device` (required: a block device path such as /dev/loop3 or
// /dev/disk/by-uuid/…, "server:/export" for nfs, or a name like "tmpfs";
// UUID=… and LABEL=… are not resolved and are refused), `directory`
// (required: absolute, without symlinks or "..", not "/"; created with its
// parents when missing), `fstype` (required: ext4, xfs, nfs, nfs4, tmpfs, …),
// `options` (comma-separated, see parse_mount_options(); default none; for
// nfs without "addr=" the server's address is looked up and added, as
// mount.nfs does), `statusFile` (relative to the mount point, default
// ".clusweb-status"), `writeCheck` (true/false, default false), `killGrace`
// (a duration, default 5s). Any other parameter, or a bad value, fails the
// call as kFatal (misconfigured).
//
// "Ours" = a mount at `directory` (the top one when mounts are stacked there)
// whose source is `device`, or, for a block device, whose major:minor (or
// source's st_rdev) is the device's st_rdev. Only the mount namespace of the
// calling thread counts (/proc/thread-self/mountinfo).
//
//   online      ours already there: ok. Something else mounted there: fails
//               kHard, naming it. A block device path that does not exist:
//               kHard. Otherwise checks the fencing deadline (refuses once
//               it has passed or when there is none), mount(2)s directly and
//               ends with the looksalive check.
//   looksalive  ours is mounted (reads mountinfo on the caller's thread:
//               /proc never blocks on the filesystem).
//   isalive     looksalive, then reads the status file (or, when it does not
//               exist, the mount point directory); with writeCheck=true then
//               writes the status file (resource, group, node, fencing token,
//               wall time) via "<statusFile>.tmp" + fsync + rename + fsync of
//               its directory.
//   offline     not mounted (or nothing of ours there): ok. Otherwise SIGTERM
//               to every holder (find_mount_holders()), up to killGrace (at
//               most half the call's time) for them to exit, SIGKILL to those
//               left, then umount2(dir, 0), retried while EBUSY (re-killing
//               new holders) until the call's time is nearly up. Never
//               detaches lazily: a mount it cannot remove is ok = false with
//               the mount point, the errno and the holders (or submounts) in
//               the detail.
//   terminate   the same with SIGKILL at once; when umount2 still fails,
//               umount2(dir, MNT_DETACH) as a last resort, reported as
//               ok = false ("detached lazily, holders: …").
//   open/close  nothing to do.
//
// Blocking work (mount, umount, file I/O, waiting for holders) runs on a
// thread of its own per call, so a hung NFS server never blocks the event
// loop: a call whose thread has not finished by CallContext::timeout
// completes with timed_out (the thread finishes, or hangs, on its own).
// Threads of one resource take turns (online, isalive, offline); Terminate
// waits for a running one at most half its timeout and then acts anyway.
// A call without a positive timeout fails at once. Signals go through pidfds,
// so a pid reused meanwhile is never hit; the agent's own pid is never
// signalled.
//
// Calls and destruction run on the executor's thread; the resource may be
// destroyed while a call's thread still runs (they share no state with it
// but the turn lock).
class MountResource final : public Resource {
 public:
  static constexpr std::chrono::milliseconds kDefaultKillGrace{5000};
  static constexpr std::string_view kDefaultStatusFile = ".clusweb-status";

  explicit MountResource(boost::asio::any_io_executor executor);
  ~MountResource() override;
  MountResource(const MountResource&) = delete;
  MountResource& operator=(const MountResource&) = delete;

  boost::asio::awaitable<CallResult> call(cluster::Verb verb, const CallContext& context) override;

 private:
  struct Turns;  // the lock by which the call threads take turns

  boost::asio::any_io_executor executor_;
  std::shared_ptr<Turns> turns_;
};

}  // namespace clusweb::resources
