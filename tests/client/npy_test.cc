#include "client/npy.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace tokensampler::client {
namespace {

// Builds a .npy file the way numpy does: magic, version, little-endian header length,
// the dict padded with spaces to a multiple of 64 and ended by '\n', then the data.
std::string MakeNpy(const std::string& dict, const std::string& data, int major = 1) {
  std::string header = dict;
  const size_t prefix = major == 1 ? 10 : 12;
  while ((prefix + header.size() + 1) % 64 != 0) header.push_back(' ');
  header.push_back('\n');
  std::string out = "\x93NUMPY";
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  const uint32_t len = static_cast<uint32_t>(header.size());
  out.push_back(static_cast<char>(len & 0xff));
  out.push_back(static_cast<char>((len >> 8) & 0xff));
  if (major != 1) {
    out.push_back(static_cast<char>((len >> 16) & 0xff));
    out.push_back(static_cast<char>((len >> 24) & 0xff));
  }
  return out + header + data;
}

std::string Floats(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

std::string Halves(const std::vector<uint16_t>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 2);
}

TEST(NpyTest, Float32OneRow) {
  auto a = ParseNpy(MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
                            Floats({2.0f, 1.0f, 0.1f})));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->rows, 1u);
  EXPECT_EQ(a->cols, 3u);
  EXPECT_EQ(a->descr, "<f4");
  EXPECT_EQ(a->data, (std::vector<float>{2.0f, 1.0f, 0.1f}));
}

TEST(NpyTest, Float16TwoRows) {
  // 1.0, -2.0, 0.5 | 65504, 0, -inf
  auto a = ParseNpy(MakeNpy("{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }",
                            Halves({0x3c00, 0xc000, 0x3800, 0x7bff, 0x0000, 0xfc00})));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->rows, 2u);
  EXPECT_EQ(a->cols, 3u);
  EXPECT_EQ(a->data[0], 1.0f);
  EXPECT_EQ(a->data[1], -2.0f);
  EXPECT_EQ(a->data[2], 0.5f);
  EXPECT_EQ(a->data[3], 65504.0f);
  EXPECT_EQ(a->data[4], 0.0f);
  EXPECT_TRUE(std::isinf(a->data[5]) && a->data[5] < 0);
}

TEST(NpyTest, Version2HeaderAndKeyOrder) {
  auto a = ParseNpy(MakeNpy("{\"shape\": (1, 2), \"fortran_order\": False, \"descr\": \"<f4\"}",
                            Floats({5.0f, 6.0f}), 2));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->rows, 1u);
  EXPECT_EQ(a->cols, 2u);
  EXPECT_EQ(a->data[1], 6.0f);
}

TEST(NpyTest, FortranOrderIsFineForOneDimension) {
  auto a = ParseNpy(
      MakeNpy("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", Floats({1.0f, 2.0f})));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->cols, 2u);
}

struct BadCase {
  std::string name;
  std::string bytes;
  std::string message_part;
};

TEST(NpyTest, BadFilesGiveClearErrors) {
  const std::string ok_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  const std::string two = Floats({1.0f, 2.0f});
  std::string bad_version = MakeNpy(ok_dict, two);
  bad_version[6] = 9;
  std::string truncated_header = MakeNpy(ok_dict, two).substr(0, 30);
  const std::vector<BadCase> cases = {
      {"empty", "", "magic"},
      {"not npy", "PK\x03\x04 this is a zip file", "magic"},
      {"version", bad_version, "unsupported format version 9.0"},
      {"truncated header", truncated_header, "truncated"},
      {"int dtype", MakeNpy("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", two),
       "dtype '<i8' is not supported"},
      {"float64", MakeNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", two),
       "dtype '<f8' is not supported"},
      {"big endian", MakeNpy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", two),
       "big-endian"},
      {"3-D", MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 2), }", two),
       "got 3 dimensions"},
      {"scalar", MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", two),
       "got 0 dimensions"},
      {"empty array", MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }", ""),
       "empty"},
      {"short data", MakeNpy(ok_dict, Floats({1.0f})), "needs 8 data bytes, the file has 4"},
      {"extra data", MakeNpy(ok_dict, Floats({1.0f, 2.0f, 3.0f})),
       "needs 8 data bytes, the file has 12"},
      {"fortran 2-D", MakeNpy("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 2), }", two),
       "Fortran"},
      {"missing shape", MakeNpy("{'descr': '<f4', 'fortran_order': False, }", two),
       "missing 'shape'"},
      {"unknown key",
       MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", two),
       "unexpected key 'x'"},
      {"bad shape", MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (a,), }", two),
       "'shape'"},
      {"negative dim", MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", two),
       "'shape'"},
      {"not a dict", MakeNpy("['descr', '<f4']", two), "does not start with '{'"},
      {"bad bool", MakeNpy("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", two),
       "True or False"},
  };
  for (const BadCase& c : cases) {
    auto a = ParseNpy(c.bytes);
    ASSERT_FALSE(a.ok()) << c.name;
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_NE(a.status().message().find(c.message_part), std::string::npos)
        << c.name << ": " << a.status().message();
  }
}

TEST(NpyTest, ReadFileNamesThePath) {
  const std::string dir = ::testing::TempDir();
  const std::string good = absl::StrCat(dir, "/npy_test_good.npy");
  {
    std::ofstream out(good, std::ios::binary);
    out << MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                   Floats({3.0f, 4.0f}));
  }
  auto a = ReadNpyFile(good);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->data, (std::vector<float>{3.0f, 4.0f}));

  const std::string bad = absl::StrCat(dir, "/npy_test_bad.npy");
  {
    std::ofstream out(bad, std::ios::binary);
    out << "hello";
  }
  a = ReadNpyFile(bad);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find(bad), std::string::npos);

  const std::string missing = absl::StrCat(dir, "/npy_test_does_not_exist.npy");
  a = ReadNpyFile(missing);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find(missing), std::string::npos);
  EXPECT_NE(a.status().message().find("cannot open"), std::string::npos);
  std::remove(good.c_str());
  std::remove(bad.c_str());
}

}  // namespace
}  // namespace tokensampler::client
