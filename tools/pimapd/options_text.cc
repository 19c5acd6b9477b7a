// pimapd's option texts, both driven by the one option table (options.cc,
// option_spec.h): --help, and --sample-config, the commented configuration file
// that tools/systemd/pimapd.conf is (a test keeps the two identical).
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tools/pimapd/option_spec.h"
#include "tools/pimapd/options.h"

namespace pimap {
namespace {

// Appends `text` word-wrapped to 78 columns, each line indented by 6.
void AppendWrapped(std::string& out, absl::string_view text) {
  constexpr size_t kIndent = 6;
  constexpr size_t kWidth = 78;
  size_t col = 0;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (col != 0 && col + 1 + word.size() > kWidth) {
      out += '\n';
      col = 0;
    }
    if (col == 0) {
      out.append(kIndent, ' ');
      col = kIndent;
    } else {
      out += ' ';
      ++col;
    }
    absl::StrAppend(&out, word);
    col += word.size();
  }
  out += '\n';
}

// A default that can stand as the value of a config line; else the option's
// metavar shows what to write ("none", "the --store host").
// ("system" is --store-tls-ca-file's: the system's CAs, not a file named so.)
bool LiteralDefault(absl::string_view value) {
  return !value.empty() && value != "none" && value != "system" &&
         !absl::StrContains(value, ' ');
}

}  // namespace

std::string HelpText() {
  const Options defaults;
  std::string out =
      "Usage: pimapd --store HOST:PORT [options]\n"
      "\n"
      "pimap push-mail IMAP gateway: accepts device connections and relays\n"
      "them to an IMAP store.\n"
      "\n"
      "Options take \"--name value\" or \"--name=value\"; boolean flags are\n"
      "given bare or as --name=true|false|yes|no|1|0. SIZE is bytes with an\n"
      "optional K, M or G suffix (64K, 4M). DURATION is like 90s, 10m, 1h30m\n"
      "or a number of seconds.\n"
      "\n"
      "  --config FILE\n"
      "      Read options from FILE: \"key = value\" lines using the option\n"
      "      names without \"--\"; '#' starts a comment. Flags on the command\n"
      "      line override the file. Default: none.\n";
  for (absl::Span<const OptionSpec> table : OptionTables()) {
    for (const OptionSpec& spec : table) {
      absl::StrAppend(&out, "  --", spec.name);
      if (spec.metavar != nullptr) absl::StrAppend(&out, " ", spec.metavar);
      out += '\n';
      AppendWrapped(out, spec.help);
      absl::StrAppend(&out, "      Default: ", spec.default_value(defaults),
                      ".\n");
    }
  }
  absl::StrAppend(
      &out,
      "  --help, -h\n      Print this help and exit.\n"
      "  --sample-config\n      Print a configuration file with every "
      "option, its\n      meaning and default (all commented out but "
      "--store), and exit.\n"
      "  --version\n      Print the version and exit.\n");
  return out;
}

std::string SampleConfig() {
  const Options defaults;
  std::string out = absl::StrCat(
      "# pimapd configuration (pimapd --config FILE), written by pimapd "
      "--sample-config.\n"
      "# \"key = value\" lines; the keys are the command-line options without "
      "\"--\"; '#'\n"
      "# starts a comment. Options given on the command line override this "
      "file.\n"
      "# Every option is listed with its meaning and its default, commented "
      "out:\n"
      "# uncomment a line to change it. SIZE is bytes with an optional K, M or "
      "G\n"
      "# suffix; DURATION is like 90s, 10m or 1h30m. Only --store is "
      "required.\n");
  for (absl::Span<const OptionSpec> table : OptionTables()) {
    for (const OptionSpec& spec : table) {
      std::string help;
      AppendWrapped(help, spec.help);
      absl::StrAppend(&out, "\n# --", spec.name,
                      spec.metavar != nullptr ? " " : "",
                      spec.metavar != nullptr ? spec.metavar : "", "\n");
      for (absl::string_view line :
           absl::StrSplit(help, '\n', absl::SkipEmpty())) {
        absl::StrAppend(&out, "#", absl::StripPrefix(line, "     "), "\n");
      }
      const std::string value = spec.default_value(defaults);
      absl::StrAppend(&out, "# Default: ", value, ".\n");
      if (absl::string_view(spec.name) == "store") {
        absl::StrAppend(&out, "store = 127.0.0.1:143\n");
      } else {
        absl::StrAppend(&out, "#", spec.name, " = ",
                        LiteralDefault(value) || spec.metavar == nullptr
                            ? value
                            : std::string(spec.metavar),
                        "\n");
      }
    }
  }
  return out;
}

}  // namespace pimap
