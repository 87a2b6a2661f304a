// concat_rows (framework/concat.h) against a naive loop: output element (r, j) is element
// (r - offset_i, j) of the part i holding row r, with offset_i the rows of the parts before it.
#include <cstdint>
#include <vector>

#include "framework/concat.h"
#include "framework/random.h"
#include "testing.h"

using namespace oodkit;

namespace {

// The naive concatenation: rows walked one by one, elements copied one by one.
template <class T>
std::vector<T> naive_rows(const std::vector<std::vector<T>>& parts, const std::vector<int64_t>& rows, int64_t row_len) {
  std::vector<T> out;
  for (size_t i = 0; i < parts.size(); ++i)
    for (int64_t r = 0; r < rows[i]; ++r)
      for (int64_t j = 0; j < row_len; ++j) out.push_back(parts[i][size_t(r * row_len + j)]);
  return out;
}

TEST(ConcatRows, MatchesANaiveLoop) {
  Generator gen(11);
  const std::vector<int64_t> rows = {3, 0, 1, 5, 2};  // an empty part in the middle
  std::vector<Tensor> f32, u8;
  std::vector<std::vector<float>> f32_vals;
  std::vector<std::vector<uint8_t>> u8_vals;
  for (int64_t n : rows) {
    f32.push_back(Tensor::randn({n, 2, 3}, gen));
    f32_vals.push_back(f32.back().to_vector<float>());
    u8.push_back(Tensor::uniform({n, 3, 2, 2}, 0, 255, gen).to(DType::U8));
    u8_vals.push_back(u8.back().to_vector<uint8_t>());
  }
  const Tensor a = concat_rows(f32), b = concat_rows(u8);
  EXPECT_EQ(a.shape(), (Shape{11, 2, 3}));
  EXPECT_EQ(b.shape(), (Shape{11, 3, 2, 2}));
  EXPECT_EQ(b.dtype(), DType::U8);
  EXPECT_EQ(a.to_vector<float>(), naive_rows(f32_vals, rows, 6));
  EXPECT_EQ(b.to_vector<uint8_t>(), naive_rows(u8_vals, rows, 12));
  // One part: a copy of it.
  EXPECT_EQ(concat_rows({f32[0]}).to_vector<float>(), f32_vals[0]);
}

TEST(ConcatRows, RefusesMismatchedParts) {
  const Tensor a = Tensor::zeros({2, 3});
  EXPECT_THROW(concat_rows({}), Error);
  EXPECT_THROW(concat_rows({a, Tensor::zeros({2, 4})}), Error);              // trailing shape
  EXPECT_THROW(concat_rows({a, Tensor::zeros({2, 3}, DType::F64)}), Error);  // dtype
  EXPECT_THROW(concat_rows({a, Tensor::zeros({6})}), Error);                 // rank
}

}  // namespace
