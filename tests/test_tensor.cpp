#include <cmath>

#include "framework/cuda_api.h"
#include "framework/ops/elementwise.h"
#include "testing.h"

using namespace oodkit;
using oodkit::testing::DeviceTest;

namespace {

class TensorTest : public DeviceTest {};
OODKIT_INSTANTIATE_DEVICES(TensorTest);

TEST_P(TensorTest, FactoriesFillEveryElement) {
  for (DType dt : {DType::F32, DType::U8, DType::I32, DType::I64}) {
    Tensor z = Tensor::zeros({3, 5}, dt, device());
    Tensor f = Tensor::full({3, 5}, 7, dt, device());
    std::vector<double> zv = z.to(DType::F64).cpu().to_vector<double>();
    std::vector<double> fv = f.to(DType::F64).cpu().to_vector<double>();
    for (double v : zv) EXPECT_EQ(v, 0.0) << dtype_name(dt);
    for (double v : fv) EXPECT_EQ(v, 7.0) << dtype_name(dt);
  }
}

TEST_P(TensorTest, RoundTripThroughDeviceKeepsValues) {
  Tensor a = Tensor::randn({2, 3, 4}, gen);
  Tensor b = a.to(device()).clone().cpu();
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
  Tensor labels = Tensor::from_vector<int64_t>({3, 1, 4, 1, 5}, {5});
  EXPECT_EQ(labels.to(device()).to_vector<int64_t>(), labels.to_vector<int64_t>());
}

TEST_P(TensorTest, CastsBetweenDtypes) {
  Tensor u = Tensor::from_vector<uint8_t>({0, 1, 128, 255}, {4}).to(device());
  EXPECT_EQ(u.to(DType::F32).to_vector<float>(), (std::vector<float>{0, 1, 128, 255}));
  Tensor f = Tensor::from_vector<float>({1.75f, -2.5f, 3.0f}, {3}).to(device());
  EXPECT_EQ(f.to(DType::I32).to_vector<int32_t>(), (std::vector<int32_t>{1, -2, 3}));
}

TEST_P(TensorTest, ReshapeAndNarrowShareStorage) {
  Tensor a = Tensor::randn({4, 6}, gen, DType::F32, device());
  Tensor r = a.reshape({2, -1, 3});
  EXPECT_EQ(r.shape(), (Shape{2, 4, 3}));
  EXPECT_TRUE(r.same_storage(a));
  Tensor rows = a.narrow(1, 2);
  EXPECT_EQ(rows.shape(), (Shape{2, 6}));
  std::vector<float> av = a.to_vector<float>(), rv = rows.to_vector<float>();
  for (int i = 0; i < 12; ++i) EXPECT_EQ(rv[size_t(i)], av[size_t(6 + i)]);
  EXPECT_EQ(a.flatten().shape(), (Shape{4, 6}));
  EXPECT_EQ(a.reshape({2, 2, 6}).flatten().shape(), (Shape{2, 12}));
}

TEST_P(TensorTest, CopyIntoViewWritesBase) {
  Tensor a = Tensor::zeros({3, 2}, DType::F32, device());
  Tensor src = Tensor::from_vector<float>({1, 2}, {1, 2});
  a.narrow(1, 1).copy_(src);
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{0, 0, 1, 2, 0, 0}));
}

TEST(TensorErrors, MessagesNameShapesAndArguments) {
  Tensor a = Tensor::zeros({2, 3});
  Tensor b = Tensor::zeros({3, 2});
  try {
    ops::add(a, b);
    FAIL() << "no throw";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("add"), std::string::npos) << m;
    EXPECT_NE(m.find("[2, 3]"), std::string::npos) << m;
    EXPECT_NE(m.find("[3, 2]"), std::string::npos) << m;
  }
  EXPECT_THROW(a.reshape({4, 2}), Error);
  EXPECT_THROW(a.reshape({-1, -1}), Error);
  EXPECT_THROW(a.narrow(1, 2), Error);
  EXPECT_THROW(a.data<int32_t>(), Error);
  EXPECT_THROW(Tensor().shape(), Error);
  EXPECT_THROW(Device::parse("tpu"), Error);
  EXPECT_EQ(Device::parse("cuda:1"), Device::cuda(1));
  EXPECT_THROW(Tensor::from_vector<float>({1, 2, 3}, {2, 2}), Error);
}

TEST(TensorErrors, CudaDeviceMismatchNamesBothDevices) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device present";
  Tensor a = Tensor::zeros({2});
  Tensor b = Tensor::zeros({2}, DType::F32, Device::cuda());
  try {
    ops::add(a, b);
    FAIL() << "no throw";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("cpu"), std::string::npos) << m;
    EXPECT_NE(m.find("cuda:0"), std::string::npos) << m;
  }
}

TEST(TensorErrors, CudaWithoutDeviceIsAClearError) {
  if (cuda_available()) GTEST_SKIP() << "a CUDA device is present";
  try {
    Tensor::zeros({2}, DType::F32, Device::cuda());
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("CUDA"), std::string::npos) << e.what();
  }
}

// ---- the caching device allocator (framework/cuda/runtime.cpp) ----------------------------

TEST(CudaAllocator, OtherDevicesAreRefusedWithAClearError) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device present";
  try {
    Tensor::zeros({2}, DType::F32, Device::cuda(1));
    FAIL() << "no throw";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("cuda:1"), std::string::npos) << m;
    EXPECT_TRUE(m.find("CUDA_VISIBLE_DEVICES") != std::string::npos || m.find("does not exist") != std::string::npos)
        << m;
  }
}

TEST(CudaAllocator, ReusesFreedBlocksUpToTwiceTheRequest) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device present";
  cuda::empty_cache();
  const size_t mib = size_t(1) << 20;
  void* a = cuda::alloc(3 * mib, 0);
  const cuda::AllocatorStats s0 = cuda::allocator_stats(0);
  cuda::release(a, 0);
  EXPECT_EQ(cuda::allocator_stats(0).bytes_cached, s0.bytes_cached + 3 * mib);
  void* b = cuda::alloc(2 * mib, 0);  // 3 MiB <= 2 x 2 MiB: the cached block is reused
  EXPECT_EQ(b, a);
  EXPECT_EQ(cuda::allocator_stats(0).num_device_mallocs, s0.num_device_mallocs);
  cuda::release(b, 0);
  void* c = cuda::alloc(mib, 0);  // 3 MiB > 2 x 1 MiB: a new block, the 3 MiB one stays cached
  EXPECT_NE(c, a);
  EXPECT_EQ(cuda::allocator_stats(0).num_device_mallocs, s0.num_device_mallocs + 1);
  cuda::release(c, 0);
  cuda::empty_cache();
  EXPECT_EQ(cuda::allocator_stats(0).bytes_cached, 0u);
}

// When cudaMalloc fails, the cached blocks are returned to the driver and the request retried.
TEST(CudaAllocator, OutOfMemoryFlushesTheCacheAndRetries) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device present";
  cuda::empty_cache();
  size_t free_b = 0, total_b = 0;
  cuda_memory_info(&free_b, &total_b);
  const size_t big = free_b / 10 * 6;  // 60% of free memory, cached after release
  void* a = cuda::alloc(big, 0);
  cuda::release(a, 0);
  ASSERT_GE(cuda::allocator_stats(0).bytes_cached, big);
  // 75% of the original free memory: more than the driver has left (40%) and more than the
  // cached 60% block holds, so only returning that block to the driver makes it fit.
  void* b = cuda::alloc(free_b / 4 * 3, 0);
  EXPECT_NE(b, nullptr);
  EXPECT_EQ(cuda::allocator_stats(0).bytes_cached, 0u);
  cuda::release(b, 0);
  cuda::empty_cache();
}

TEST(CudaAllocator, OutOfMemoryErrorNamesTheRequest) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device present";
  size_t free_b = 0, total_b = 0;
  cuda_memory_info(&free_b, &total_b);
  try {
    cuda::alloc(total_b * 2, 0);
    FAIL() << "no throw";
  } catch (const OutOfMemoryError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("out of memory"), std::string::npos) << m;
    EXPECT_NE(m.find("cuda:0"), std::string::npos) << m;
  }
  EXPECT_NO_THROW(cuda::release(cuda::alloc(1024, 0), 0));  // the allocator still works
}

TEST(TensorPoison, NewAllocationsAreNaN) {
  // tests/main.cpp turns poisoning on for the whole suite.
  ASSERT_TRUE(poison_allocations());
  Tensor t = Tensor::empty({4});
  for (float v : t.to_vector<float>()) EXPECT_TRUE(std::isnan(v));
}

TEST(Generator, SameSeedSameStream) {
  Generator a(7), b(7), c(8);
  Tensor x = Tensor::randn({16}, a), y = Tensor::randn({16}, b), z = Tensor::randn({16}, c);
  EXPECT_EQ(x.to_vector<float>(), y.to_vector<float>());
  EXPECT_NE(x.to_vector<float>(), z.to_vector<float>());
  // counter_uniform: in [0,1), roughly uniform.
  double mean = 0;
  for (uint64_t i = 0; i < 10000; ++i) {
    const float u = counter_uniform(42, i);
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    mean += u;
  }
  EXPECT_NEAR(mean / 10000, 0.5, 0.02);
}

}  // namespace

// Tensor::from_external (the Python bindings' no-copy input): the tensor reads the caller's
// memory in place, views share it, and the owner is released exactly when the last one goes.
TEST(TensorExternal, WrapsCallerMemoryAndReleasesOwnerLast) {
  std::vector<float> buf{1.5f, -2.f, 3.25f, 4.f, 5.f, -6.5f};
  int released = 0;
  std::shared_ptr<void> owner(&released, [](void* p) { ++*static_cast<int*>(p); });
  Tensor view;
  {
    Tensor t = Tensor::from_external(buf.data(), {2, 3}, DType::F32, Device::cpu(), owner);
    owner.reset();
    EXPECT_EQ(t.raw_data(), static_cast<void*>(buf.data()));  // no copy
    EXPECT_EQ(t.to_vector<float>(), buf);
    buf[4] = 42.f;  // the caller's later writes are seen: the same memory
    EXPECT_EQ(t.data<float>()[4], 42.f);
    view = t.narrow(1, 1);
    EXPECT_EQ(view.data<float>()[1], 42.f);
    EXPECT_EQ(released, 0);
  }
  EXPECT_EQ(released, 0);  // the view still holds the storage
  view = Tensor();
  EXPECT_EQ(released, 1);
}

TEST(TensorExternal, RefusesAMissingOwner) {
  float x = 1.f;
  EXPECT_THROW(Tensor::from_external(&x, {1}, DType::F32, Device::cpu(), nullptr), Error);
}
