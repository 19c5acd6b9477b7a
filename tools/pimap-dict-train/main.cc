// pimap-dict-train: trains the zstd dictionary of pushed P-IMAP events
// (docs/zstd-event-frames.md) from event transcripts.
//
//   pimap-dict-train --out FILE [--size BYTES] [--id N] TRANSCRIPT...
//
// A transcript holds event bursts as the gateway pushes them during IDLE
// ("* 12 EXISTS", "* 12 FETCH (UID 345 FLAGS (\Seen))", "* 3 EXPUNGE", ...),
// one burst per block, blocks separated by an empty line. Each burst is one
// training sample: a frame is made per burst, so the dictionary must know
// what one burst looks like. The id names the dictionary to devices; give a
// new one whenever the content changes.
#include <zdict.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace {

int Usage() {
  std::cerr << "usage: pimap-dict-train --out FILE [--size BYTES] [--id N] "
               "TRANSCRIPT...\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_path;
  size_t size = 4096;
  unsigned id = 0;
  std::vector<std::string> inputs;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--out" || arg == "--size" || arg == "--id") && i + 1 < argc) {
      const std::string value = argv[++i];
      if (arg == "--out") {
        out_path = value;
      } else if (arg == "--size" ? !absl::SimpleAtoi(value, &size)
                                 : !absl::SimpleAtoi(value, &id)) {
        return Usage();
      }
    } else if (!arg.empty() && arg[0] == '-') {
      return Usage();
    } else {
      inputs.push_back(arg);
    }
  }
  if (out_path.empty() || inputs.empty() || size < 256) return Usage();

  // Samples: concatenated, with their sizes (ZDICT's input form).
  std::string samples;
  std::vector<size_t> sizes;
  for (const std::string& path : inputs) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      std::cerr << "cannot read " << path << "\n";
      return 1;
    }
    std::stringstream text;
    text << in.rdbuf();
    std::string burst;
    for (absl::string_view line : absl::StrSplit(text.str(), '\n')) {
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) {
        if (!burst.empty()) {
          samples += burst;
          sizes.push_back(burst.size());
          burst.clear();
        }
        continue;
      }
      burst.append(line.data(), line.size());
      burst += "\r\n";  // as the gateway sends it
    }
    if (!burst.empty()) {
      samples += burst;
      sizes.push_back(burst.size());
    }
  }
  if (sizes.size() < 8) {
    std::cerr << "too few bursts to train on (" << sizes.size() << ")\n";
    return 1;
  }
  std::string dictionary(size, '\0');
  const size_t n =
      ZDICT_trainFromBuffer(dictionary.data(), dictionary.size(),
                            samples.data(), sizes.data(),
                            static_cast<unsigned>(sizes.size()));
  if (ZDICT_isError(n)) {
    std::cerr << "training failed: " << ZDICT_getErrorName(n) << "\n";
    return 1;
  }
  if (id != 0) {
    // RFC 8878 §5: Dictionary_ID, 4 bytes little-endian after the magic.
    for (int b = 0; b < 4; ++b) {
      dictionary[4 + b] = static_cast<char>((id >> (8 * b)) & 0xff);
    }
  }
  dictionary.resize(n);
  std::ofstream out(out_path, std::ios::binary);
  out << dictionary;
  if (!out) {
    std::cerr << "cannot write " << out_path << "\n";
    return 1;
  }
  std::cout << "dictionary " << ZDICT_getDictID(dictionary.data(), n) << ": "
            << n << " bytes from " << sizes.size() << " bursts ("
            << samples.size() << " bytes)\n";
  return 0;
}
