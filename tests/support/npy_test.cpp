// support/npy.h: files as numpy writes them parse to the shape, dtype and bytes numpy put in
// them (headers written out by hand here, byte for byte as numpy.lib.format does); encodeNpy
// writes what numpy writes; and every malformed or unsupported file is a clean error naming
// the file and, where there is one, what to do.

#include "trnsim/support/npy.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace trnsim::support {
namespace {

const std::string kOrigin = "dir/a.npy";

/// A .npy file: magic, version, header length of `lenBytes`, `header`, then `data`.
std::vector<uint8_t> npyFile(const std::string& header, const std::vector<uint8_t>& data,
                             uint8_t major = 1, size_t lenBytes = 2) {
  std::vector<uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', major, 0};
  for (size_t i = 0; i < lenBytes; ++i) out.push_back(uint8_t(header.size() >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

/// The header numpy writes for `dict`: 21 - digits of the first dimension spaces of room to
/// grow (`first`; none for a 0-d array), then spaces and a newline up to a multiple of 64.
std::string numpyHeader(std::string dict, size_t preamble = 10, int64_t first = -1) {
  if (first >= 0) dict.append(21 - std::to_string(first).size(), ' ');
  size_t total = preamble + dict.size() + 1;
  dict.append((total + 63) / 64 * 64 - total, ' ');
  return dict + "\n";
}

std::vector<uint8_t> floatBytes(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * 4);
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

Status parseError(const std::vector<uint8_t>& bytes) {
  auto a = parseNpy(bytes, kOrigin);
  EXPECT_FALSE(a.hasValue());
  if (a.hasValue()) return {};
  EXPECT_EQ(a.status().where(), kOrigin);
  return a.status();
}

TEST(Npy, ParsesWhatNumpyWrites) {
  // np.save(f, np.arange(6, dtype=np.float32).reshape(2, 3))
  auto bytes =
      npyFile(numpyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 10, 2),
              floatBytes({0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(bytes.size(), 128u + 24u);  // as numpy 2.4 writes it
  auto a = parseNpy(bytes, kOrigin);
  ASSERT_TRUE(a) << a.status().toString();
  EXPECT_EQ(a->dtype, (NpyDType{'f', 4}));
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a->numElements(), 6);
  ASSERT_EQ(a->data.size(), 24u);
  float v[6];
  std::memcpy(v, a->data.data(), 24);
  EXPECT_EQ(v[5], 5.f);
}

TEST(Npy, DtypesShapesAndVersions) {
  struct Case {
    const char* descr;
    NpyDType dtype;
  } cases[] = {{"<f2", {'f', 2}}, {"<f8", {'f', 8}}, {"|i1", {'i', 1}},
               {"<i2", {'i', 2}}, {"<i4", {'i', 4}}, {"<i8", {'i', 8}},
               {"|u1", {'u', 1}}, {"<u4", {'u', 4}}, {"<V2", {'V', 2}},  // ml_dtypes.bfloat16
               {"|V1", {'V', 1}}, {">i1", {'i', 1}}};
  for (const Case& c : cases) {
    std::string dict =
        std::string("{'descr': '") + c.descr + "', 'fortran_order': False, 'shape': (3,), }";
    auto a =
        parseNpy(npyFile(numpyHeader(dict), std::vector<uint8_t>(3 * c.dtype.itemBytes)), kOrigin);
    ASSERT_TRUE(a) << c.descr << ": " << a.status().toString();
    EXPECT_EQ(a->dtype, c.dtype) << c.descr;
    EXPECT_EQ(a->shape, (std::vector<int64_t>{3}));
  }
  // 0-d, empty, double-quoted keys, no trailing comma, 1-d Fortran order (same as C order).
  auto scalar = parseNpy(
      npyFile("{\"descr\": \"<f4\", \"fortran_order\": True, \"shape\": ()}", floatBytes({7})),
      kOrigin);
  ASSERT_TRUE(scalar) << scalar.status().toString();
  EXPECT_TRUE(scalar->shape.empty());
  EXPECT_EQ(scalar->numElements(), 1);
  auto empty =
      parseNpy(npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5)}", {}), kOrigin);
  ASSERT_TRUE(empty) << empty.status().toString();
  EXPECT_EQ(empty->numElements(), 0);
  // Versions 2.0 and 3.0 have a 4-byte header length.
  for (uint8_t major : {2, 3}) {
    auto a = parseNpy(npyFile(numpyHeader("{'descr': '<f4', 'fortran_order': False, "
                                          "'shape': (1, 1, 2), }",
                                          12),
                              floatBytes({1, 2}), major, 4),
                      kOrigin);
    ASSERT_TRUE(a) << a.status().toString();
    EXPECT_EQ(a->shape, (std::vector<int64_t>{1, 1, 2}));
  }
}

TEST(Npy, EncodeWritesWhatNumpyWritesAndParsesBack) {
  std::vector<uint8_t> data = floatBytes({0, 1, 2, 3, 4, 5});
  std::vector<int64_t> shape = {2, 3};
  std::vector<uint8_t> bytes =
      encodeNpy({'f', 4}, shape, std::as_bytes(std::span<const uint8_t>(data)));
  // Byte for byte what np.save writes for the same array (checked with numpy 2.4).
  EXPECT_EQ(bytes, npyFile(numpyHeader("{'descr': '<f4', 'fortran_order': False, "
                                       "'shape': (2, 3), }",
                                       10, 2),
                           data));
  std::vector<int64_t> one = {5};
  std::vector<uint8_t> i8 = {1, 2, 3, 4, 255};
  auto back =
      parseNpy(encodeNpy({'i', 1}, one, std::as_bytes(std::span<const uint8_t>(i8))), kOrigin);
  ASSERT_TRUE(back) << back.status().toString();
  EXPECT_EQ(back->dtype.descr(), "|i1");
  EXPECT_EQ(back->shape, one);
  EXPECT_EQ(back->data.size(), 5u);
  EXPECT_EQ(uint8_t(back->data[4]), 255);
  EXPECT_EQ(npyShapeString(one), "(5,)");
  EXPECT_EQ(npyShapeString(shape), "(2, 3)");
  EXPECT_EQ(npyShapeString({}), "()");
  EXPECT_EQ((NpyDType{'u', 2}).name(), "uint16");
}

TEST(Npy, RefusesWhatItCannotReadWithAReason) {
  auto withDescr = [](const std::string& descr, size_t itemBytes = 4) {
    return npyFile(
        numpyHeader("{'descr': '" + descr + "', 'fortran_order': False, 'shape': (2,), }"),
        std::vector<uint8_t>(2 * itemBytes));
  };
  struct Case {
    std::vector<uint8_t> bytes;
    const char* needle;
    ErrorCode code;
  } cases[] = {
      {{'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0, 0, 0}, "not a .npy file", ErrorCode::kCorrupt},
      {npyFile("{}", {}, 4), "version 4.0", ErrorCode::kCorrupt},
      {npyFile(numpyHeader("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }"),
               std::vector<uint8_t>(16)),
       "np.ascontiguousarray", ErrorCode::kInvalidArgument},
      {withDescr(">f4"), "big-endian", ErrorCode::kInvalidArgument},
      {withDescr("|O", 8), "object", ErrorCode::kInvalidArgument},
      {withDescr("|b1", 1), "a.astype(np.uint8)", ErrorCode::kInvalidArgument},
      {withDescr("<c8", 8), "complex", ErrorCode::kInvalidArgument},
      {withDescr("<U3", 12), "string", ErrorCode::kInvalidArgument},
      {withDescr("<M8", 8), "datetime", ErrorCode::kInvalidArgument},
      {withDescr("<f16", 16), "float16, float32 and float64", ErrorCode::kInvalidArgument},
      {withDescr("=f4"), "native byte order", ErrorCode::kInvalidArgument},
      {withDescr("|f4"), "needs a byte order", ErrorCode::kInvalidArgument},
      {withDescr("<i3", 3), "1, 2, 4 and 8-byte", ErrorCode::kInvalidArgument},
      {npyFile(numpyHeader("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }"),
               std::vector<uint8_t>(8)),
       "structured dtype", ErrorCode::kInvalidArgument},
      {npyFile("{'descr': '<f4', 'shape': (2,)}", std::vector<uint8_t>(8)),
       "'fortran_order' is missing", ErrorCode::kCorrupt},
      {npyFile("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}",
               std::vector<uint8_t>(8)),
       "appears twice", ErrorCode::kCorrupt},
      {npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}",
               std::vector<uint8_t>(8)),
       "unknown key 'x'", ErrorCode::kCorrupt},
      {npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", {}), "non-negative",
       ErrorCode::kCorrupt},
      {npyFile("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}", {}), "True or False",
       ErrorCode::kCorrupt},
      {npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", {}),
       "after the closing", ErrorCode::kCorrupt},
      {npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", std::vector<uint8_t>(7)),
       "needs 8 data bytes but the file holds 7", ErrorCode::kCorrupt},
      {npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", std::vector<uint8_t>(9)),
       "needs 8 data bytes but the file holds 9", ErrorCode::kCorrupt},
      {npyFile("{'descr': '<f8', 'fortran_order': False, "
               "'shape': (4611686018427387904, 4611686018427387904)}",
               {}),
       "too large", ErrorCode::kCorrupt},
      {npyFile("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904,)}", {}),
       "more than 2^64", ErrorCode::kCorrupt},
      // Empty (a 0 comes last), but 2^62 * 3 overflows int64 on the way (fuzz_npy, UBSan).
      {npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 3, 0)}",
               {}),
       "too large", ErrorCode::kCorrupt},
      {npyFile("{'descr': '<f4", {}), "no closing quote", ErrorCode::kCorrupt},
  };
  for (const Case& c : cases) {
    Status s = parseError(c.bytes);
    EXPECT_NE(s.message().find(c.needle), std::string::npos)
        << "expected '" << c.needle << "' in: " << s.toString();
    EXPECT_EQ(s.code(), c.code) << s.toString();
  }
  // A header length beyond the file, or beyond numpy's own limit, is refused before parsing.
  std::vector<uint8_t> longHeader = npyFile("{}", {});
  longHeader[8] = 0xff;
  longHeader[9] = 0x7f;
  EXPECT_NE(parseError(longHeader).message().find("at most 10000"), std::string::npos);
  std::vector<uint8_t> shortFile = npyFile("{}", {});
  shortFile[8] = 200;
  EXPECT_NE(parseError(shortFile).message().find("only 2 follow"), std::string::npos);
  // Every truncation of a good file is an error, never a crash.
  auto good = npyFile(numpyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"),
                      floatBytes({1, 2}));
  for (size_t n = 0; n < good.size(); ++n)
    EXPECT_FALSE(parseNpy(std::span<const uint8_t>(good.data(), n), kOrigin)) << n;
}

TEST(Npy, FilesOnDisk) {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("trnsim_npy_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "x.npy").string();
  std::vector<int64_t> shape = {2, 2};
  std::vector<uint8_t> data = floatBytes({1, 2, 3, 4});
  ASSERT_TRUE(saveNpy(path, {'f', 4}, shape, std::as_bytes(std::span<const uint8_t>(data))));
  auto a = loadNpy(path);
  ASSERT_TRUE(a) << a.status().toString();
  EXPECT_EQ(a->shape, shape);
  auto missing = loadNpy((dir / "nope.npy").string());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.status().code(), ErrorCode::kIo);
  EXPECT_NE(missing.status().toString().find("nope.npy"), std::string::npos);
  Status bad = saveNpy((dir / "no_dir" / "x.npy").string(), {'f', 4}, shape,
                       std::as_bytes(std::span<const uint8_t>(data)));
  EXPECT_EQ(bad.code(), ErrorCode::kIo);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace trnsim::support
