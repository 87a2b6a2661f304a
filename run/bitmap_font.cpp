#include "run/bitmap_font.h"

#include <cctype>
#include <cstring>

namespace oodkit::run {

namespace {
// Five rows of three pixels ('#' set) per glyph.
const char* glyph(char c) {
  switch (std::toupper(static_cast<unsigned char>(c))) {
    case '0': return "####.##.##.####";
    case '1': return ".#.##..#..#.###";
    case '2': return "###..#####..###";
    case '3': return "###..####..####";
    case '4': return "#.##.####..#..#";
    case '5': return "####..###..####";
    case '6': return "####..####.####";
    case '7': return "###..#..#..#..#";
    case '8': return "####.#####.####";
    case '9': return "####.####..####";
    case 'A': return ".#.#.#####.##.#";
    case 'B': return "##.#.###.#.###.";
    case 'C': return ".###..#..#...##";
    case 'D': return "##.#.##.##.###.";
    case 'E': return "####..####..###";
    case 'F': return "####..####..#..";
    case 'G': return ".###..#.##.#.##";
    case 'H': return "#.##.#####.##.#";
    case 'I': return "###.#..#..#.###";
    case 'J': return "..#..#..##.#.#.";
    case 'K': return "#.##.###.#.##.#";
    case 'L': return "#..#..#..#..###";
    case 'M': return "#.#####.##.##.#";
    case 'N': return "##.#.##.##.##.#";
    case 'O': return ".#.#.##.##.#.#.";
    case 'P': return "##.#.###.#..#..";
    case 'Q': return ".#.#.##.###..##";
    case 'R': return "##.#.###.#.##.#";
    case 'S': return ".###...#...###.";
    case 'T': return "###.#..#..#..#.";
    case 'U': return "#.##.##.##.####";
    case 'V': return "#.##.##.##.#.#.";
    case 'W': return "#.##.########.#";
    case 'X': return "#.##.#.#.#.##.#";
    case 'Y': return "#.##.#.#..#..#.";
    case 'Z': return "###..#.#.#..###";
    case ' ': return "...............";
    case '.': return ".............#.";
    case ',': return ".........#..#..";
    case ':': return "....#.....#....";
    case '-': return "......###......";
    case '+': return "....#.###.#....";
    case '=': return "...###...###...";
    case '_': return "............###";
    case '(': return ".#.#..#..#...#.";
    case ')': return ".#...#..#..#.#.";
    case '[': return "##.#..#..#..##.";
    case ']': return ".##..#..#..#.##";
    case '/': return "..#..#.#.#..#..";
    case '%': return "#.#..#.#.#..#.#";
    case '#': return "#.####.#.####.#";
    case '<': return "..#.#.#...#...#";
    case '>': return "#...#...#.#.#..";
    default: return "###############";
  }
}
}  // namespace

int64_t text_width(const std::string& text, int scale) {
  return int64_t(text.size()) * (kGlyphW + 1) * scale;
}

void draw_text(Tensor& image, int64_t y, int64_t x, const std::string& text, int scale, const uint8_t rgb[3]) {
  const int64_t h = image.size(1), w = image.size(2);
  uint8_t* o = image.data<uint8_t>();
  for (size_t i = 0; i < text.size(); ++i) {
    const char* g = glyph(text[i]);
    const size_t n = std::strlen(g);
    for (int r = 0; r < kGlyphH; ++r)
      for (int c = 0; c < kGlyphW; ++c) {
        const size_t at = size_t(r * kGlyphW + c);
        if (at >= n || g[at] != '#') continue;
        for (int dy = 0; dy < scale; ++dy)
          for (int dx = 0; dx < scale; ++dx) {
            const int64_t py = y + r * scale + dy, px = x + (int64_t(i) * (kGlyphW + 1) + c) * scale + dx;
            if (py < 0 || py >= h || px < 0 || px >= w) continue;
            for (int ch = 0; ch < 3; ++ch) o[(ch * h + py) * w + px] = rgb[ch];
          }
      }
  }
}

}  // namespace oodkit::run
