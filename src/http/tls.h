#pragma once

#include <boost/asio/ssl/context.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"

namespace clusweb::http {

// A certificate chain and private key in PEM, for one host name ("" = the
// listener's default, "*.example.com" = a wildcard).
struct TlsIdentity {
  std::string host;
  std::string certificate_pem;
  std::string key_pem;
};

// The TLS contexts of one https listener: one per host, chosen by SNI. A
// client without SNI (or with an unknown name) gets the first identity.
// Immutable after build(); safe to share between threads.
class TlsListener {
 public:
  static Result<std::shared_ptr<TlsListener>> build(const std::vector<TlsIdentity>& identities);

  boost::asio::ssl::context& default_context() { return *contexts_.front().second; }

 private:
  TlsListener() = default;
  static int on_server_name(SSL* ssl, int* alert, void* arg);
  SSL_CTX* context_for(std::string_view host) const;

  std::vector<std::pair<std::string, std::unique_ptr<boost::asio::ssl::context>>> contexts_;
};

}  // namespace clusweb::http
