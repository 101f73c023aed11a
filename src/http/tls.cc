#include "http/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/buffer.hpp>
#include <cctype>

namespace clusweb::http {

namespace ssl = boost::asio::ssl;

namespace {

std::string openssl_error() {
  unsigned long code = ERR_get_error();
  if (code == 0) return "unknown TLS error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  ERR_clear_error();
  return text;
}

Result<std::unique_ptr<ssl::context>> make_context(const TlsIdentity& identity) {
  auto context = std::make_unique<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = context->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_SERVER);
  boost::system::error_code ec;
  context->use_certificate_chain(
      boost::asio::buffer(identity.certificate_pem.data(), identity.certificate_pem.size()), ec);
  if (ec) {
    return make_error("certificate for host \"{}\" is not usable: {}", identity.host,
                      openssl_error());
  }
  context->use_private_key(boost::asio::buffer(identity.key_pem.data(), identity.key_pem.size()),
                           ssl::context::pem, ec);
  if (ec) {
    return make_error("private key for host \"{}\" is not usable: {}", identity.host,
                      openssl_error());
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    return make_error("private key for host \"{}\" does not match its certificate", identity.host);
  }
  return context;
}

}  // namespace

Result<std::shared_ptr<TlsListener>> TlsListener::build(
    const std::vector<TlsIdentity>& identities) {
  if (identities.empty()) return make_error("an https listener needs at least one certificate");
  std::shared_ptr<TlsListener> listener(new TlsListener());
  for (const auto& identity : identities) {
    auto context = make_context(identity);
    if (!context) return context.error();
    listener->contexts_.emplace_back(identity.host, std::move(*context));
  }
  for (auto& [host, context] : listener->contexts_) {
    SSL_CTX_set_tlsext_servername_callback(context->native_handle(), &TlsListener::on_server_name);
    SSL_CTX_set_tlsext_servername_arg(context->native_handle(), listener.get());
  }
  return listener;
}

SSL_CTX* TlsListener::context_for(std::string_view host) const {
  for (const auto& [name, context] : contexts_) {
    if (name == host) return context->native_handle();
  }
  for (const auto& [name, context] : contexts_) {
    if (name.starts_with("*.") && host.size() > name.size() - 1 &&
        host.ends_with(std::string_view(name).substr(1))) {
      return context->native_handle();
    }
  }
  return nullptr;
}

int TlsListener::on_server_name(SSL* ssl, int* /*alert*/, void* arg) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_NOACK;
  std::string host(name);
  for (auto& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto* self = static_cast<TlsListener*>(arg);
  if (SSL_CTX* chosen = self->context_for(host)) SSL_set_SSL_CTX(ssl, chosen);
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace clusweb::http
