#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace clusweb::config {

// Where a value came from, for error messages: "sites.yaml:12".
struct SourceLocation {
  std::string file;
  int line = 0;  // 1-based; 0 = unknown
  std::string describe() const;
};

enum class Scheme { kHttp, kHttps };

// One binding: scheme://address:port[/host] (IIS ip:port:host).
struct Binding {
  Scheme scheme = Scheme::kHttp;
  std::string address;  // "*" = all addresses, else a literal IPv4/IPv6 address
  uint16_t port = 0;
  std::string host;         // "" = any host; "*.example.com" = wildcard; lowercase
  std::string certificate;  // https: PEM certificate chain file (resolved path)
  std::string key;          // https: PEM private key file (resolved path)
  // The shared configuration carries TLS material inline instead of paths (a path on the
  // administrator's machine means nothing on a node): the certificate chain as PEM text and
  // the private key sealed with the cluster's data key (secrets/data_key.h). Each node's
  // agent writes them to root-only files and puts their paths in `certificate` and `key`
  // before the web service sees them. Never both a path and an inline value.
  std::string certificate_pem;
  std::string key_sealed;
  SourceLocation where;

  bool has_certificate() const { return !certificate.empty() || !certificate_pem.empty(); }
  bool has_key() const { return !key.empty() || !key_sealed.empty(); }
  bool inline_material() const { return !certificate_pem.empty() || !key_sealed.empty(); }

  // "http://127.0.0.1:8080/www.example.com"
  std::string url() const;
  // The listening endpoint this binding shares with others: "http://127.0.0.1:8080".
  std::string listener_key() const;
};

// A path prefix of a site served by a pool (or statically when pool is empty).
struct Application {
  std::string path = "/";  // normalized: starts with '/', no trailing '/' except for "/"
  std::string pool;        // "" = static content from the site root
  SourceLocation where;
};

struct Site {
  std::string name;
  std::string root;  // physicalPath, absolute after loading
  std::vector<Binding> bindings;
  std::vector<Application> applications;  // sorted by path length, longest first
  bool auto_start = true;
  std::vector<std::string> default_documents{"index.html", "index.htm", "default.htm"};
  bool directory_browsing = false;
  std::string access_log;  // absolute path, or "" when off
  // Extra or overriding MIME types: extension without the dot (lowercase) -> type.
  std::map<std::string, std::string> mime_types;
  SourceLocation where;

  bool operator==(const Site&) const;
};

enum class SocketMode {
  kActivation,  // LISTEN_FDS=1, LISTEN_PID, listening unix socket on fd 3
  kPort,        // PORT=<free loopback port>; the worker binds 127.0.0.1:PORT itself
};

struct ApplicationPool {
  std::string name;
  std::vector<std::string> command;  // argv; argv[0] resolved against the manifest's folder
  std::string working_directory;     // absolute; default: the manifest's folder
  std::map<std::string, std::string> environment;
  // Variables whose values are secrets: each is read from a file (absolute path, readable by
  // the master) every time a worker starts, so the value is in no configuration. The shared
  // configuration carries them sealed instead (secretEnvironmentSealed, like Binding's
  // key_sealed); each node's agent writes them to root-only files and puts the paths here.
  std::map<std::string, std::string> secret_environment;
  std::map<std::string, std::string> secret_environment_sealed;
  std::string user;   // "" = the master's user (root only when the master runs as root)
  int processes = 1;  // maxProcesses: >1 = web garden
  SocketMode socket = SocketMode::kActivation;
  bool auto_start = true;
  std::chrono::milliseconds startup_time_limit{90'000};
  std::chrono::milliseconds shutdown_time_limit{90'000};
  // Rapid-fail protection: more than `rapid_fail_max_crashes` failures within
  // `rapid_fail_interval` stops the pool.
  bool rapid_fail_protection = true;
  int rapid_fail_max_crashes = 5;
  std::chrono::milliseconds rapid_fail_interval{300'000};
  int queue_length = 1000;  // requests waiting for a worker connection
  SourceLocation where;

  bool operator==(const ApplicationPool&) const;
};

// Limits against hostile or broken clients.
struct Limits {
  std::size_t max_header_bytes = std::size_t{16} * 1024;
  int max_headers = 100;
  std::uint64_t max_body_bytes = 32ull * 1024 * 1024;
  std::chrono::milliseconds header_timeout{10'000};  // whole request head must arrive
  std::chrono::milliseconds idle_timeout{60'000};    // keep-alive idle, and any read/write stall
  int max_connections = 10'000;
};

// Service-wide settings (kind: WebServer, at most one document).
struct ServerSettings {
  std::string user = "nobody";  // the front end runs as this user
  int threads = 1;              // serving threads in the front end
  Limits limits;
  SourceLocation where;
};

// One validated, immutable configuration. Cross-references hold: every
// application's pool exists; no two sites claim the same listener+host;
// https bindings on one listener with different hosts all have certificates.
struct WebConfig {
  ServerSettings server;
  std::map<std::string, Site> sites;
  std::map<std::string, ApplicationPool> pools;
};

using WebConfigPtr = std::shared_ptr<const WebConfig>;

}  // namespace clusweb::config
