#include "client/address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace tokensampler::client {
namespace {

struct HostPort {
  std::string host;  // without brackets
  bool bracketed = false;
  int port = 0;
};

absl::StatusOr<HostPort> SplitHostPort(absl::string_view text) {
  HostPort out;
  absl::string_view rest;
  if (absl::StartsWith(text, "[")) {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("'", text, "': missing ']'"));
    }
    out.host = std::string(text.substr(1, close - 1));
    out.bracketed = true;
    rest = text.substr(close + 1);
    if (!absl::ConsumePrefix(&rest, ":")) {
      return absl::InvalidArgumentError(absl::StrCat("'", text, "': expected [address]:port"));
    }
  } else {
    const size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", text, "': expected host:port (the port is required)"));
    }
    out.host = std::string(text.substr(0, colon));
    if (out.host.find(':') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", text, "': an IPv6 address needs brackets, e.g. [::1]:50051"));
    }
    rest = text.substr(colon + 1);
  }
  if (out.host.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "': empty host"));
  }
  int port = 0;
  if (rest.empty() || !absl::SimpleAtoi(rest, &port) || port < 1 || port > 65535 ||
      !absl::c_all_of(rest, absl::ascii_isdigit)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "': port must be in [1, 65535], got '", rest, "'"));
  }
  out.port = port;
  return out;
}

bool IsIpv4Literal(const std::string& host) {
  in_addr a;
  return inet_pton(AF_INET, host.c_str(), &a) == 1;
}

bool IsIpv6Literal(const std::string& host) {
  in6_addr a;
  return inet_pton(AF_INET6, host.c_str(), &a) == 1;
}

// Resolves a host name to its first address, preferring IPv4. Returns the literal and
// whether it is IPv6.
absl::StatusOr<std::pair<std::string, bool>> Resolve(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve host '", host, "': ", gai_strerror(rc)));
  }
  std::string v4, v6;
  for (addrinfo* p = res; p != nullptr; p = p->ai_next) {
    char buf[INET6_ADDRSTRLEN];
    if (p->ai_family == AF_INET && v4.empty()) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(p->ai_addr)->sin_addr, buf, sizeof(buf));
      v4 = buf;
    } else if (p->ai_family == AF_INET6 && v6.empty()) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(p->ai_addr)->sin6_addr, buf,
                sizeof(buf));
      v6 = buf;
    }
  }
  freeaddrinfo(res);
  if (!v4.empty()) return std::make_pair(v4, false);
  if (!v6.empty()) return std::make_pair(v6, true);
  return absl::InvalidArgumentError(absl::StrCat("host '", host, "' has no address"));
}

}  // namespace

absl::StatusOr<ChannelTarget> ParseServerAddress(absl::string_view address) {
  address = absl::StripAsciiWhitespace(address);
  if (address.empty()) {
    return absl::InvalidArgumentError("server address is empty");
  }
  if (absl::StartsWith(address, "dns:")) {
    absl::string_view rest = address.substr(4);
    // dns:///host:port or dns://authority/host:port.
    if (absl::ConsumePrefix(&rest, "//")) {
      const size_t slash = rest.find('/');
      if (slash == absl::string_view::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("'", address, "': expected dns:///host:port"));
      }
      rest = rest.substr(slash + 1);
    }
    auto hp = SplitHostPort(rest);
    if (!hp.ok()) return hp.status();
    return ChannelTarget{std::string(address), true};
  }
  if (absl::StartsWith(address, "ipv4:") || absl::StartsWith(address, "ipv6:")) {
    return ChannelTarget{std::string(address), true};
  }
  if (absl::StartsWith(address, "unix:") || absl::StartsWith(address, "unix-abstract:")) {
    return ChannelTarget{std::string(address), false};
  }
  std::vector<absl::string_view> parts = absl::StrSplit(address, ',');
  if (parts.size() == 1) {
    auto hp = SplitHostPort(address);
    if (!hp.ok()) return hp.status();
    return ChannelTarget{std::string(address), false};
  }
  std::vector<std::string> v4, v6;
  for (absl::string_view part : parts) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", address, "': empty entry in the address list"));
    }
    auto hp = SplitHostPort(part);
    if (!hp.ok()) return hp.status();
    std::string host = hp->host;
    bool is_v6;
    if (IsIpv4Literal(host)) {
      is_v6 = false;
    } else if (IsIpv6Literal(host)) {
      is_v6 = true;
    } else {
      auto resolved = Resolve(host);
      if (!resolved.ok()) return resolved.status();
      host = resolved->first;
      is_v6 = resolved->second;
    }
    if (is_v6) {
      v6.push_back(absl::StrCat("[", host, "]:", hp->port));
    } else {
      v4.push_back(absl::StrCat(host, ":", hp->port));
    }
  }
  if (!v4.empty() && !v6.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", address,
                     "': an address list must be all IPv4 or all IPv6 (gRPC's ipv4:/ipv6: "
                     "targets cannot mix them)"));
  }
  if (!v4.empty()) return ChannelTarget{absl::StrCat("ipv4:", absl::StrJoin(v4, ",")), true};
  return ChannelTarget{absl::StrCat("ipv6:", absl::StrJoin(v6, ",")), true};
}

}  // namespace tokensampler::client
