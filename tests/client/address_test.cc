#include "client/address.h"

#include "gtest/gtest.h"

namespace tokensampler::client {
namespace {

TEST(ParseServerAddressTest, SingleHostPortUsesDefaultPolicy) {
  auto t = ParseServerAddress("127.0.0.1:50051");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->target, "127.0.0.1:50051");
  EXPECT_FALSE(t->round_robin);
  t = ParseServerAddress("localhost:7");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->target, "localhost:7");
  t = ParseServerAddress("[::1]:8080");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->target, "[::1]:8080");
}

TEST(ParseServerAddressTest, DnsUsesRoundRobin) {
  auto t = ParseServerAddress("dns:///sampler.default.svc:50051");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->target, "dns:///sampler.default.svc:50051");
  EXPECT_TRUE(t->round_robin);
  EXPECT_FALSE(ParseServerAddress("dns:///sampler").ok());  // no port
}

TEST(ParseServerAddressTest, CommaListBecomesIpv4Target) {
  auto t = ParseServerAddress("127.0.0.1:5001, 127.0.0.2:5002,10.0.0.1:7");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->target, "ipv4:127.0.0.1:5001,127.0.0.2:5002,10.0.0.1:7");
  EXPECT_TRUE(t->round_robin);
}

TEST(ParseServerAddressTest, CommaListOfIpv6) {
  auto t = ParseServerAddress("[::1]:5001,[::1]:5002");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->target, "ipv6:[::1]:5001,[::1]:5002");
  EXPECT_TRUE(t->round_robin);
}

TEST(ParseServerAddressTest, CommaListResolvesLocalhost) {
  auto t = ParseServerAddress("localhost:5001,127.0.0.1:5002");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->target, "ipv4:127.0.0.1:5001,127.0.0.1:5002");
}

TEST(ParseServerAddressTest, MixedFamiliesRejected) {
  auto t = ParseServerAddress("127.0.0.1:1,[::1]:2");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("all IPv4 or all IPv6"), std::string::npos);
}

TEST(ParseServerAddressTest, SchemesPassThrough) {
  auto t = ParseServerAddress("ipv4:127.0.0.1:1,127.0.0.1:2");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->target, "ipv4:127.0.0.1:1,127.0.0.1:2");
  EXPECT_TRUE(t->round_robin);
  t = ParseServerAddress("unix:/run/sampler.sock");
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->round_robin);
}

TEST(ParseServerAddressTest, ErrorsNameThePart) {
  struct Bad {
    const char* address;
    const char* message_part;
  };
  const Bad cases[] = {
      {"", "empty"},
      {"localhost", "port is required"},
      {"host:0", "port must be in [1, 65535], got '0'"},
      {"host:65536", "got '65536'"},
      {"host:12ab", "got '12ab'"},
      {"host:+5", "got '+5'"},
      {":50051", "empty host"},
      {"::1:50051", "needs brackets"},
      {"[::1:50051", "missing ']'"},
      {"127.0.0.1:1,", "empty entry"},
      {"127.0.0.1:1,127.0.0.1", "port is required"},
  };
  for (const Bad& c : cases) {
    auto t = ParseServerAddress(c.address);
    ASSERT_FALSE(t.ok()) << c.address;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(t.status().message().find(c.message_part), std::string::npos)
        << c.address << " -> " << t.status().message();
  }
}

}  // namespace
}  // namespace tokensampler::client
