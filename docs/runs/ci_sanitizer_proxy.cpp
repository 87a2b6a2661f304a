// Proxy for the ASan pass's model tests: float64 Eigen GEMMs of a ResNet-20 stage-1 convolution
// (64 x 576 times 576 x 1024, im2col form) plus an elementwise pass, repeated.
#include <Eigen/Core>
#include <cstdio>
int main() {
  using M = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  M w = M::Random(64, 576), col = M::Random(576, 1024), out(64, 1024);
  double s = 0;
  for (int r = 0; r < 40; ++r) {
    out.noalias() = w * col;
    out = out.cwiseMax(0.0);
    s += out.sum();
  }
  std::printf("%g\n", s);
}
