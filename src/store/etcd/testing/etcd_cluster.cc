#include "store/etcd/testing/etcd_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "base/log.h"
#include "base/process.h"
#include "base/unique_fd.h"
#include "etcdpb/rpc.grpc.pb.h"

namespace clusweb::store::testing {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr const char* kOpenssl = "/usr/bin/openssl";

// Distinct free loopback ports: all are bound before any is released.
Result<std::vector<int>> free_ports(std::size_t count) {
  std::vector<UniqueFd> sockets;
  std::vector<int> ports;
  for (std::size_t i = 0; i < count; ++i) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return errno_error("socket", "free port");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      return errno_error("bind", "127.0.0.1:0");
    }
    socklen_t length = sizeof(address);
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      return errno_error("getsockname", "free port");
    }
    ports.push_back(ntohs(address.sin_port));
    sockets.push_back(std::move(fd));
  }
  return ports;
}

bool is_tmpfs(const std::string& path) {
  struct statfs info {};
  return ::statfs(path.c_str(), &info) == 0 && info.f_type == TMPFS_MAGIC;
}

// A fresh directory on tmpfs: under /dev/shm when that is tmpfs, else a
// tmpfs mounted on a temporary directory (root only), else a plain one.
Result<std::pair<std::string, bool>> make_directory() {
  const bool shm = is_tmpfs("/dev/shm");
  std::string pattern = shm ? "/dev/shm/clusweb-etcd-XXXXXX" : "/tmp/clusweb-etcd-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return errno_error("mkdtemp", pattern);
  if (shm) return std::make_pair(pattern, false);
  if (::mount("tmpfs", pattern.c_str(), "tmpfs", 0, "size=1g,mode=0700") == 0) {
    return std::make_pair(pattern, true);
  }
  logger("store")->warn("etcd test data not on tmpfs dir={}", pattern);
  return std::make_pair(pattern, false);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

// Runs a command to completion with stdout and stderr in `output_path`.
Result<std::string> run_command(const std::vector<std::string>& argv,
                                const std::map<std::string, std::string>& env,
                                const std::string& output_path, std::chrono::milliseconds timeout) {
  UniqueFd output(::open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!output) return errno_error("open", output_path);
  SpawnOptions spawn_options;
  spawn_options.argv = argv;
  spawn_options.env = env;
  spawn_options.stdout_fd = output.get();
  spawn_options.stderr_fd = output.get();
  spawn_options.parent_death_signal = SIGKILL;
  auto pid = spawn(spawn_options);
  if (!pid) return pid.error();
  output.reset();
  const auto deadline = Clock::now() + timeout;
  int wait_status = 0;
  for (;;) {
    pid_t done = ::waitpid(*pid, &wait_status, WNOHANG);
    if (done == *pid) break;
    if (done < 0) return errno_error("waitpid", argv.front());
    if (Clock::now() > deadline) {
      ::kill(*pid, SIGKILL);
      ::waitpid(*pid, &wait_status, 0);
      return make_error("{} timed out: {}", argv.front(), read_text(output_path));
    }
    std::this_thread::sleep_for(5ms);
  }
  std::string text = read_text(output_path);
  if (!WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != 0) {
    return make_error("{} {}: {}", argv.front(), describe_wait_status(wait_status), text);
  }
  return text;
}

std::shared_ptr<grpc::ChannelCredentials> credentials_for(const std::optional<EtcdClientTls>& tls) {
  if (!tls) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = read_text(tls->ca_file);
  ssl.pem_cert_chain = read_text(tls->cert_file);
  ssl.pem_private_key = read_text(tls->key_file);
  return grpc::SslCredentials(ssl);
}

// Maintenance.Status of one member, on a fresh connection.
Result<etcdserverpb::StatusResponse> member_status(const std::string& endpoint,
                                                   const std::optional<EtcdClientTls>& tls,
                                                   std::chrono::milliseconds timeout) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto channel = grpc::CreateCustomChannel(endpoint, credentials_for(tls), args);
  auto stub = etcdserverpb::Maintenance::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  etcdserverpb::StatusRequest request;
  etcdserverpb::StatusResponse response;
  grpc::Status status = stub->Status(&context, request, &response);
  if (!status.ok()) return make_error("status of {}: {}", endpoint, status.error_message());
  return response;
}

}  // namespace

Result<std::unique_ptr<EtcdCluster>> EtcdCluster::start(const EtcdClusterOptions& options) {
  // A port picked free may be taken before etcd binds it: start over then.
  constexpr int kAttempts = 3;
  Error last;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    std::unique_ptr<EtcdCluster> cluster(new EtcdCluster());
    cluster->options_ = options;
    auto directory = make_directory();
    if (!directory) return directory.error();
    cluster->directory_ = directory->first;
    cluster->mounted_ = directory->second;
    std::random_device random;
    cluster->cluster_token_ = fmt::format("clusweb-test-{:x}", random());
    if (options.tls) {
      if (auto made = cluster->make_certificates(); !made) return made.error();
    }
    auto ports = free_ports(2 * options.members);
    if (!ports) return ports.error();
    for (std::size_t i = 0; i < options.members; ++i) {
      Member member;
      member.name = fmt::format("m{}", i);
      member.data_dir = fmt::format("{}/{}", cluster->directory_, member.name);
      member.client_port = (*ports)[2 * i];
      member.peer_port = (*ports)[2 * i + 1];
      member.endpoint = fmt::format("127.0.0.1:{}", member.client_port);
      cluster->members_.push_back(member);
    }
    Status launched = ok_status();
    for (std::size_t i = 0; i < options.members && launched; ++i) launched = cluster->launch(i);
    const auto deadline = Clock::now() + options.start_timeout;
    for (std::size_t i = 0; i < options.members && launched; ++i) {
      launched = cluster->wait_serving(i, deadline);
    }
    if (launched) {
      auto remaining =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      launched = cluster->wait_healthy(std::max(remaining, std::chrono::milliseconds(1000)));
    }
    if (launched) return cluster;
    last = launched.error();
    if (last.message.find("address already in use") == std::string::npos) return last;
    logger("store")->warn("etcd test cluster port taken, starting over attempt={}", attempt + 1);
  }
  return last;
}

EtcdCluster::~EtcdCluster() {
  stop_all();
  if (options_.keep_directory || directory_.empty()) return;
  if (mounted_) ::umount2(directory_.c_str(), MNT_DETACH);
  std::error_code ignored;
  std::filesystem::remove_all(directory_, ignored);
}

std::vector<std::string> EtcdCluster::endpoints() const {
  std::vector<std::string> result;
  for (std::size_t i = 0; i < members_.size(); ++i) result.push_back(endpoint(i));
  return result;
}

const std::string& EtcdCluster::endpoint(std::size_t member) const {
  return members_[member].endpoint;
}

std::string EtcdCluster::log_path(std::size_t member) const {
  return fmt::format("{}/{}.log", directory_, members_[member].name);
}

bool EtcdCluster::running(std::size_t member) const { return members_[member].pid > 0; }

pid_t EtcdCluster::pid(std::size_t member) const { return members_[member].pid; }

std::string EtcdCluster::client_url(const Member& member) const {
  return fmt::format("{}://127.0.0.1:{}", options_.tls ? "https" : "http", member.client_port);
}

Status EtcdCluster::launch(std::size_t index) {
  Member& member = members_[index];
  std::string initial_cluster;
  for (const auto& peer : members_) {
    if (!initial_cluster.empty()) initial_cluster += ',';
    initial_cluster += fmt::format("{}=http://127.0.0.1:{}", peer.name, peer.peer_port);
  }
  // clang-format off
  std::vector<std::string> argv = {
      options_.etcd_binary,
      "--name", member.name,
      "--data-dir", member.data_dir,
      "--listen-client-urls", client_url(member),
      "--advertise-client-urls", client_url(member),
      "--listen-peer-urls", fmt::format("http://127.0.0.1:{}", member.peer_port),
      "--initial-advertise-peer-urls", fmt::format("http://127.0.0.1:{}", member.peer_port),
      "--initial-cluster", initial_cluster,
      "--initial-cluster-state", "new",
      "--initial-cluster-token", cluster_token_,
      "--heartbeat-interval", "50",
      "--election-timeout", "500",
      "--auto-compaction-mode", "revision",
      "--auto-compaction-retention", "1000",
      "--quota-backend-bytes", std::to_string(1ULL << 30),
      "--logger", "zap",
      "--log-outputs", "stderr",
  };
  // clang-format on
  if (options_.tls) {
    argv.insert(argv.end(), {"--cert-file", server_cert_, "--key-file", server_key_,
                             "--client-cert-auth", "--trusted-ca-file", client_tls_->ca_file});
  }
  const std::string log = log_path(index);
  UniqueFd output(::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!output) return errno_error("open", log);
  SpawnOptions spawn_options;
  spawn_options.argv = std::move(argv);
  spawn_options.env = {{"PATH", "/usr/bin:/bin"}};
  spawn_options.stdout_fd = output.get();
  spawn_options.stderr_fd = output.get();
  spawn_options.parent_death_signal = SIGKILL;
  auto pid = spawn(spawn_options);
  if (!pid) return pid.error();
  member.pid = *pid;
  return ok_status();
}

std::string EtcdCluster::log_tail(std::size_t member) const {
  std::string text = read_text(log_path(member));
  constexpr std::size_t kTail = 2000;
  return text.size() > kTail ? text.substr(text.size() - kTail) : text;
}

Status EtcdCluster::wait_serving(std::size_t index, Clock::time_point deadline) {
  Member& member = members_[index];
  for (;;) {
    int wait_status = 0;
    if (member.pid > 0 && ::waitpid(member.pid, &wait_status, WNOHANG) == member.pid) {
      member.pid = -1;
      return make_error("etcd {} {}: {}", member.name, describe_wait_status(wait_status),
                        log_tail(index));
    }
    if (member_status(endpoint(index), client_tls_, 300ms)) return ok_status();
    if (Clock::now() > deadline) {
      return make_error("etcd {} does not serve on {}: {}", member.name, endpoint(index),
                        log_tail(index));
    }
    std::this_thread::sleep_for(20ms);
  }
}

Status EtcdCluster::wait_healthy(std::chrono::milliseconds timeout) const {
  const auto deadline = Clock::now() + timeout;
  std::string problem = "no member running";
  for (;;) {
    std::uint64_t leader = 0;
    bool healthy = true;
    bool any = false;
    for (std::size_t i = 0; i < members_.size() && healthy; ++i) {
      if (!running(i)) continue;
      any = true;
      auto status = member_status(endpoint(i), client_tls_, 300ms);
      if (!status) {
        problem = status.error().message;
        healthy = false;
      } else if (status->leader() == 0 || (leader != 0 && status->leader() != leader)) {
        problem = fmt::format("{} sees leader {:x}", endpoint(i), status->leader());
        healthy = false;
      } else {
        leader = status->leader();
      }
    }
    if (healthy && any) return ok_status();
    if (Clock::now() > deadline) return make_error("etcd cluster not healthy: {}", problem);
    std::this_thread::sleep_for(20ms);
  }
}

Result<std::size_t> EtcdCluster::leader(std::chrono::milliseconds timeout) const {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    for (std::size_t i = 0; i < members_.size(); ++i) {
      if (!running(i)) continue;
      auto status = member_status(endpoint(i), client_tls_, 300ms);
      if (status && status->leader() != 0 && status->leader() == status->header().member_id()) {
        return i;
      }
    }
    if (Clock::now() > deadline) return make_error("no etcd leader within {} ms", timeout.count());
    std::this_thread::sleep_for(20ms);
  }
}

void EtcdCluster::kill(std::size_t index) {
  Member& member = members_[index];
  if (member.pid <= 0) return;
  ::kill(member.pid, SIGKILL);
  int wait_status = 0;
  ::waitpid(member.pid, &wait_status, 0);
  member.pid = -1;
}

Status EtcdCluster::pause(std::size_t index) {
  Member& member = members_[index];
  if (member.pid <= 0) return make_error("etcd {} is not running", member.name);
  if (::kill(member.pid, SIGSTOP) != 0) return errno_error("kill SIGSTOP", member.name);
  int wait_status = 0;
  pid_t done = 0;
  do {
    done = ::waitpid(member.pid, &wait_status, WUNTRACED);
  } while (done < 0 && errno == EINTR);
  if (done < 0) return errno_error("waitpid", member.name);
  if (WIFSTOPPED(wait_status)) return ok_status();
  member.pid = -1;  // reaped: it exited instead
  return make_error("etcd {} {}: {}", member.name, describe_wait_status(wait_status),
                    log_tail(index));
}

Status EtcdCluster::resume(std::size_t index) {
  Member& member = members_[index];
  if (member.pid <= 0) return make_error("etcd {} is not running", member.name);
  if (::kill(member.pid, SIGCONT) != 0) return errno_error("kill SIGCONT", member.name);
  return ok_status();
}

void EtcdCluster::stop(std::size_t index) {
  Member& member = members_[index];
  if (member.pid <= 0) return;
  ::kill(member.pid, SIGTERM);
  const auto deadline = Clock::now() + 10s;
  int wait_status = 0;
  while (::waitpid(member.pid, &wait_status, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      ::kill(member.pid, SIGKILL);
      ::waitpid(member.pid, &wait_status, 0);
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
  member.pid = -1;
}

Status EtcdCluster::restart(std::size_t index) {
  if (running(index)) return make_error("etcd {} is running", members_[index].name);
  if (auto launched = launch(index); !launched) return launched;
  return wait_serving(index, Clock::now() + options_.start_timeout);
}

void EtcdCluster::stop_all() {
  for (std::size_t i = 0; i < members_.size(); ++i) kill(i);
}

Result<std::string> EtcdCluster::etcdctl(const std::vector<std::string>& args) const {
  std::string endpoint_list;
  for (const auto& member : members_) {
    if (!endpoint_list.empty()) endpoint_list += ',';
    endpoint_list += client_url(member);
  }
  std::vector<std::string> argv = {options_.etcdctl_binary, "--endpoints=" + endpoint_list};
  if (client_tls_) {
    argv.insert(argv.end(), {"--cacert=" + client_tls_->ca_file, "--cert=" + client_tls_->cert_file,
                             "--key=" + client_tls_->key_file});
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, {{"PATH", "/usr/bin:/bin"}, {"ETCDCTL_API", "3"}},
                     directory_ + "/etcdctl.out", 20s);
}

Status EtcdCluster::make_certificates() {
  const std::string dir = directory_ + "/tls";
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) return make_error("cannot create {}: {}", dir, error.message());
  const std::string output = dir + "/openssl.out";
  const std::map<std::string, std::string> env = {{"PATH", "/usr/bin:/bin"},
                                                  {"RANDFILE", dir + "/.rnd"}};
  auto run = [&](std::vector<std::string> argv) -> Status {
    argv.insert(argv.begin(), kOpenssl);
    auto result = run_command(argv, env, output, 20s);
    if (!result) return result.error();
    return ok_status();
  };
  {
    std::ofstream server_ext(dir + "/server.ext");
    server_ext << "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                  "extendedKeyUsage=serverAuth,clientAuth\n";
    std::ofstream client_ext(dir + "/client.ext");
    client_ext << "extendedKeyUsage=clientAuth\n";
  }
  const std::vector<std::string> ec_key = {"-newkey", "ec", "-pkeyopt",
                                           "ec_paramgen_curve:prime256v1", "-nodes"};
  auto with_key = [&ec_key](std::vector<std::string> argv, std::size_t at) {
    argv.insert(argv.begin() + static_cast<std::ptrdiff_t>(at), ec_key.begin(), ec_key.end());
    return argv;
  };
  Status made = run(with_key({"req", "-x509", "-days", "2", "-subj", "/CN=clusweb-test-ca",
                              "-keyout", dir + "/ca.key", "-out", dir + "/ca.crt"},
                             1));
  for (const std::string name : {"server", "client"}) {
    if (!made) break;
    made = run(
        with_key({"req", "-subj", fmt::format("/CN=clusweb-test-{}", name), "-keyout",
                  fmt::format("{}/{}.key", dir, name), "-out", fmt::format("{}/{}.csr", dir, name)},
                 1));
    if (!made) break;
    made =
        run({"x509", "-req", "-days", "2", "-in", fmt::format("{}/{}.csr", dir, name), "-CA",
             dir + "/ca.crt", "-CAkey", dir + "/ca.key", "-CAcreateserial", "-out",
             fmt::format("{}/{}.crt", dir, name), "-extfile", fmt::format("{}/{}.ext", dir, name)});
  }
  if (!made) return made;
  server_cert_ = dir + "/server.crt";
  server_key_ = dir + "/server.key";
  client_tls_ = EtcdClientTls{dir + "/ca.crt", dir + "/client.crt", dir + "/client.key"};
  return ok_status();
}

}  // namespace clusweb::store::testing
