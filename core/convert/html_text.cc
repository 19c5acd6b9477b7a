// The HTML tag stripper and entity decoder (html_text.h).
#include "core/convert/html_text.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace pimap::convert {
namespace {

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

struct NamedEntity {
  const char* name;
  uint32_t cp;
};
// The entities mail bodies actually use; anything else stays as written.
constexpr NamedEntity kEntities[] = {
    {"amp", '&'},      {"lt", '<'},        {"gt", '>'},       {"quot", '"'},
    {"apos", '\''},    {"nbsp", 0xA0},     {"copy", 0xA9},    {"reg", 0xAE},
    {"trade", 0x2122}, {"hellip", 0x2026}, {"mdash", 0x2014}, {"ndash", 0x2013},
    {"lsquo", 0x2018}, {"rsquo", 0x2019},  {"ldquo", 0x201C}, {"rdquo", 0x201D},
    {"laquo", 0xAB},   {"raquo", 0xBB},    {"euro", 0x20AC},  {"pound", 0xA3},
    {"yen", 0xA5},     {"cent", 0xA2},     {"sect", 0xA7},    {"deg", 0xB0},
    {"middot", 0xB7},  {"bull", 0x2022},   {"times", 0xD7},   {"divide", 0xF7},
    {"shy", 0xAD},     {"eacute", 0xE9},   {"egrave", 0xE8},  {"ecirc", 0xEA},
    {"agrave", 0xE0},  {"aacute", 0xE1},   {"acirc", 0xE2},   {"auml", 0xE4},
    {"ouml", 0xF6},    {"uuml", 0xFC},     {"Auml", 0xC4},    {"Ouml", 0xD6},
    {"Uuml", 0xDC},    {"szlig", 0xDF},    {"ccedil", 0xE7},  {"ntilde", 0xF1},
    {"oacute", 0xF3},  {"iacute", 0xED},   {"uacute", 0xFA},  {"Eacute", 0xC9},
};

// Elements after which the text goes on on a new line.
bool IsBlock(absl::string_view name) {
  static constexpr absl::string_view kBlocks[] = {
      "p",    "div",     "br",      "tr",     "table",  "h1",     "h2",
      "h3",   "h4",      "h5",      "h6",     "ul",     "ol",     "dl",
      "dt",   "dd",      "hr",      "pre",    "li",     "title",  "blockquote",
      "form", "section", "article", "header", "footer", "address"};
  for (absl::string_view b : kBlocks) {
    if (name == b) return true;
  }
  return false;
}

// One tag: its lower-cased name, whether it closes, and its href if any.
struct Tag {
  std::string name;
  bool closing = false;
  std::string href;
};

// Reads the tag starting at in[0] == '<' (the caller checked a name or '/'
// follows). Returns the characters consumed (through '>' or the end).
size_t ReadTag(absl::string_view in, Tag* tag) {
  size_t i = 1;
  if (i < in.size() && in[i] == '/') {
    tag->closing = true;
    ++i;
  }
  while (i < in.size() &&
         (absl::ascii_isalnum(in[i]) || in[i] == '-' || in[i] == ':')) {
    tag->name.push_back(absl::ascii_tolower(in[i]));
    ++i;
  }
  // Attributes: quoted values may hold '>'.
  while (i < in.size() && in[i] != '>') {
    if (absl::ascii_isalpha(in[i])) {
      size_t start = i;
      while (i < in.size() && (absl::ascii_isalnum(in[i]) || in[i] == '-')) ++i;
      const bool is_href =
          absl::EqualsIgnoreCase(in.substr(start, i - start), "href");
      while (i < in.size() && absl::ascii_isspace(in[i])) ++i;
      if (i >= in.size() || in[i] != '=') continue;
      ++i;
      while (i < in.size() && absl::ascii_isspace(in[i])) ++i;
      std::string value;
      if (i < in.size() && (in[i] == '"' || in[i] == '\'')) {
        const char q = in[i++];
        size_t end = in.find(q, i);
        if (end == absl::string_view::npos) end = in.size();
        value = std::string(in.substr(i, end - i));
        i = end < in.size() ? end + 1 : end;
      } else {
        size_t start_v = i;
        while (i < in.size() && !absl::ascii_isspace(in[i]) && in[i] != '>') {
          ++i;
        }
        value = std::string(in.substr(start_v, i - start_v));
      }
      if (is_href) tag->href = std::move(value);
      continue;
    }
    ++i;
  }
  return i < in.size() ? i + 1 : i;
}

// Builds the text: white space collapses (outside <pre>), line breaks at
// most two in a row, nothing past the bound.
class TextSink {
 public:
  explicit TextSink(size_t max) : max_(max) {}
  void Char(char c, bool pre) {
    if (!pre && absl::ascii_isspace(static_cast<unsigned char>(c))) {
      pending_space_ = true;
      return;
    }
    if (pre && c == '\n') {
      Raw("\n");
      newlines_ = 1;
      pending_space_ = false;
      return;
    }
    if (pending_space_ && !out_.empty() && newlines_ == 0) Raw(" ");
    pending_space_ = false;
    out_.push_back(c);
    newlines_ = 0;
  }
  void Text(absl::string_view s) {
    for (char c : s) Char(c, false);
  }
  // Ends the line unless at the start of one; `lines`: up to that many line
  // ends in a row (2: an empty line, a paragraph); `force`: one more even at
  // the start of a line (<br><br>).
  void Break(int lines = 1, bool force = false) {
    pending_space_ = false;
    if (out_.empty()) return;
    if (force && newlines_ < 2) {
      Raw("\n");
      ++newlines_;
      return;
    }
    while (newlines_ < lines) {
      Raw("\n");
      ++newlines_;
    }
  }
  bool over() const { return out_.size() > max_; }
  std::string Take() {
    while (!out_.empty() && (out_.back() == '\n' || out_.back() == ' ')) {
      out_.pop_back();
    }
    if (!out_.empty()) out_.push_back('\n');
    return std::move(out_);
  }

 private:
  void Raw(absl::string_view s) { out_.append(s.data(), s.size()); }
  std::string out_;
  size_t max_;
  int newlines_ = 0;
  bool pending_space_ = false;
};

}  // namespace

size_t DecodeEntity(absl::string_view in, std::string* out) {
  if (in.size() < 3 || in[0] != '&') return 0;
  const size_t semi = in.substr(0, 12).find(';');
  if (semi == absl::string_view::npos) return 0;
  absl::string_view body = in.substr(1, semi - 1);
  if (!body.empty() && body[0] == '#') {
    uint32_t cp = 0;
    const bool hex = body.size() > 1 && (body[1] == 'x' || body[1] == 'X');
    absl::string_view digits = body.substr(hex ? 2 : 1);
    if (digits.empty()) return 0;
    for (char c : digits) {
      int v;
      if (c >= '0' && c <= '9') {
        v = c - '0';
      } else if (hex && absl::ascii_isxdigit(c)) {
        v = absl::ascii_tolower(c) - 'a' + 10;
      } else {
        return 0;
      }
      cp = cp * (hex ? 16 : 10) + v;
      if (cp > 0x10FFFF) cp = 0x110000;  // stays invalid, no overflow
    }
    AppendUtf8(cp, out);
    return semi + 1;
  }
  for (const NamedEntity& e : kEntities) {
    if (body == e.name) {
      AppendUtf8(e.cp, out);
      return semi + 1;
    }
  }
  return 0;
}

absl::StatusOr<std::string> HtmlToText(absl::string_view html,
                                       size_t max_output) {
  TextSink sink(max_output);
  int pre = 0;
  std::string link;  // the href of the <a> being read
  size_t i = 0;
  while (i < html.size()) {
    if (sink.over()) {
      return absl::ResourceExhaustedError(
          absl::StrCat("converted text exceeds ", max_output, " bytes"));
    }
    const char c = html[i];
    if (c == '&') {
      std::string decoded;
      const size_t used = DecodeEntity(html.substr(i), &decoded);
      if (used > 0) {
        // A no-break space is a space the collapsing keeps as one.
        sink.Text(decoded == "\xC2\xA0" ? " " : decoded);
        i += used;
        continue;
      }
    }
    if (c != '<') {
      sink.Char(c, pre > 0);
      ++i;
      continue;
    }
    absl::string_view rest = html.substr(i);
    if (absl::StartsWith(rest, "<!--")) {
      const size_t end = rest.find("-->", 4);
      i += end == absl::string_view::npos ? rest.size() : end + 3;
      continue;
    }
    if (rest.size() > 1 && (rest[1] == '!' || rest[1] == '?')) {
      const size_t end = rest.find('>');
      i += end == absl::string_view::npos ? rest.size() : end + 1;
      continue;
    }
    if (rest.size() < 2 || !(absl::ascii_isalpha(rest[1]) || rest[1] == '/')) {
      sink.Char(c, pre > 0);  // a lone '<' is text
      ++i;
      continue;
    }
    Tag tag;
    i += ReadTag(rest, &tag);
    if (!tag.closing &&
        (tag.name == "script" || tag.name == "style" || tag.name == "head")) {
      // Skipped whole, through its end tag (none: through the end).
      const std::string end_tag = absl::StrCat("</", tag.name);
      size_t j = i;
      for (;;) {
        const size_t lt = html.find("</", j);
        if (lt == absl::string_view::npos) {
          j = html.size();
          break;
        }
        if (absl::StartsWithIgnoreCase(html.substr(lt), end_tag)) {
          const size_t gt = html.find('>', lt);
          j = gt == absl::string_view::npos ? html.size() : gt + 1;
          break;
        }
        j = lt + 2;
      }
      i = j;
      continue;
    }
    if (tag.name == "pre") pre += tag.closing ? (pre > 0 ? -1 : 0) : 1;
    if (tag.name == "a") {
      if (!tag.closing) {
        link = tag.href;
      } else {
        if (!link.empty() && !absl::StartsWith(link, "#") &&
            !absl::StartsWithIgnoreCase(link, "mailto:")) {
          sink.Text(absl::StrCat(" <", link, ">"));
        }
        link.clear();
      }
      continue;
    }
    if (tag.name == "img" || tag.name == "td" || tag.name == "th") {
      sink.Char(' ', false);
      continue;
    }
    if (IsBlock(tag.name)) {
      const bool paragraph = tag.name == "p" || tag.name == "table" ||
                             tag.name == "blockquote" ||
                             (tag.name.size() == 2 && tag.name[0] == 'h' &&
                              absl::ascii_isdigit(tag.name[1]));
      sink.Break(paragraph ? 2 : 1, tag.name == "br");
      if (tag.name == "li" && !tag.closing) sink.Text("- ");
    }
  }
  if (sink.over()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("converted text exceeds ", max_output, " bytes"));
  }
  return sink.Take();
}

}  // namespace pimap::convert
