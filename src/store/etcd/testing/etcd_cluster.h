#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace clusweb::store::testing {

struct EtcdClusterOptions {
  std::size_t members = 1;  // 1 or 3 (any odd number works)
  std::string etcd_binary = "/usr/bin/etcd";
  std::string etcdctl_binary = "/usr/bin/etcdctl";
  // Clients speak TLS (a throw-away CA, server and client certificates are
  // made with the openssl tool) and must present a client certificate.
  bool tls = false;
  // How long start() and restart() wait for members to serve.
  std::chrono::milliseconds start_timeout{20'000};
  // Keep the directory (data, logs, certificates) when the cluster goes away.
  bool keep_directory = false;
};

// The client's side of a TLS cluster: PEM files in the cluster's directory.
struct EtcdClientTls {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

// Throw-away etcd members on 127.0.0.1 for tests and benchmarks: free ports
// picked at run time, data on tmpfs, --heartbeat-interval 50
// --election-timeout 500 (minimum lease TTL 1 s, failover under a second),
// revision auto-compaction (retention 1000), a 1 GiB backend quota, each
// member's log in <directory>/m<i>.log.
//
// The members are children of this process (spawned with PDEATHSIG SIGKILL,
// so they die with the thread that started them). Not thread-safe. Calls
// block; use it from test code, not from an event loop that must keep running.
class EtcdCluster {
 public:
  // Starts the members and waits until every one serves and they agree on a leader.
  static Result<std::unique_ptr<EtcdCluster>> start(const EtcdClusterOptions& options = {});
  // SIGKILLs every member still running (by pid), reaps it, removes the directory.
  ~EtcdCluster();
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  std::size_t size() const { return members_.size(); }
  // Client endpoints as "127.0.0.1:port", by member index.
  std::vector<std::string> endpoints() const;
  const std::string& endpoint(std::size_t member) const;
  // Set for a TLS cluster.
  const std::optional<EtcdClientTls>& tls() const { return client_tls_; }
  const std::string& directory() const { return directory_; }
  std::string log_path(std::size_t member) const;

  bool running(std::size_t member) const;
  pid_t pid(std::size_t member) const;

  // The member that is leader, once a running member reports itself leader
  // (within `timeout`).
  Result<std::size_t> leader(std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;
  // Every running member answers and reports the same leader (within `timeout`).
  Status wait_healthy(std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

  // SIGKILL, then reap.
  void kill(std::size_t member);
  // SIGSTOP, then waits until the kernel reports the member stopped, which is
  // when every one of its threads has stopped: from then on it answers
  // nothing (a signal alone takes effect some time after kill() returns).
  Status pause(std::size_t member);
  // SIGCONT: a paused member runs on.
  Status resume(std::size_t member);
  // SIGTERM (etcd hands leadership over), wait up to 10 s, then SIGKILL.
  void stop(std::size_t member);
  // Starts a stopped member again with its data and ports; returns once it
  // serves clients (which needs a quorum of members running).
  Status restart(std::size_t member);
  // SIGKILLs every member.
  void stop_all();

  // Runs etcdctl (v3 API) with `args` against every member; its stdout, or
  // the error with its output when it fails.
  Result<std::string> etcdctl(const std::vector<std::string>& args) const;

 private:
  struct Member {
    std::string name;
    std::string data_dir;
    int client_port = 0;
    int peer_port = 0;
    std::string endpoint;  // "127.0.0.1:<client_port>"
    pid_t pid = -1;
  };

  EtcdCluster() = default;
  Status launch(std::size_t member);
  // Waits until the member answers a Status call; fails at once when it exits.
  Status wait_serving(std::size_t member, std::chrono::steady_clock::time_point deadline);
  Status make_certificates();
  std::string client_url(const Member& member) const;
  std::string log_tail(std::size_t member) const;

  EtcdClusterOptions options_;
  std::string directory_;
  bool mounted_ = false;  // directory_ is a tmpfs we mounted
  std::string cluster_token_;
  std::vector<Member> members_;
  std::optional<EtcdClientTls> client_tls_;
  std::string server_cert_;
  std::string server_key_;
};

}  // namespace clusweb::store::testing
