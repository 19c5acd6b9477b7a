#include "core/convert/html_text.h"

#include "gtest/gtest.h"

namespace pimap::convert {
namespace {

std::string Text(absl::string_view html) {
  absl::StatusOr<std::string> t = HtmlToText(html, 1 << 20);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : "";
}

TEST(HtmlTextTest, StripsTagsAndCollapsesWhiteSpace) {
  EXPECT_EQ(Text("<html><body><p>Hello   <b>world</b>\n!</p></body></html>"),
            "Hello world !\n");
}

TEST(HtmlTextTest, BlocksBreakLines) {
  EXPECT_EQ(Text("<div>one</div><div>two</div>line<br>next"),
            "one\ntwo\nline\nnext\n");
  EXPECT_EQ(Text("<p>a</p><p>b</p>"), "a\n\nb\n");
  EXPECT_EQ(Text("<ul><li>x</li><li>y</li></ul>"), "- x\n- y\n");
}

TEST(HtmlTextTest, SkipsScriptStyleHeadAndComments) {
  EXPECT_EQ(Text("<head><title>t</title><style>p{}</style></head>"
                 "<script>if (a<b) x();</script>body<!-- <p>no</p> -->!"),
            "body!\n");
}

TEST(HtmlTextTest, DecodesEntities) {
  EXPECT_EQ(Text("a &amp; b &lt;c&gt; &eacute;&#233;&#xE9; &nbsp;x &bogus; &"),
            "a & b <c> \xc3\xa9\xc3\xa9\xc3\xa9 x &bogus; &\n");
}

TEST(HtmlTextTest, LinksKeepTheirTarget) {
  EXPECT_EQ(Text("see <a href=\"https://e.x/a?b=1&amp;c\">here</a>."),
            "see here <https://e.x/a?b=1&amp;c>.\n");
  EXPECT_EQ(Text("<a href='mailto:x@y'>mail</a>"), "mail\n");
}

TEST(HtmlTextTest, QuotedGreaterThanInAttributes) {
  EXPECT_EQ(Text("<img alt=\"a > b\">text"), "text\n");
}

TEST(HtmlTextTest, PreKeepsLineBreaks) {
  EXPECT_EQ(Text("<pre>a\n  b</pre>"), "a\n  b\n");
}

TEST(HtmlTextTest, UnterminatedConstructsEnd) {
  EXPECT_EQ(Text("a<!-- never closed"), "a\n");
  EXPECT_EQ(Text("a<script>never closed"), "a\n");
  EXPECT_EQ(Text("a <b"), "a\n");
  EXPECT_EQ(Text("1 < 2"), "1 < 2\n");
}

TEST(HtmlTextTest, OutputIsBounded) {
  std::string html;
  for (int i = 0; i < 1000; ++i) html += "<p>0123456789</p>";
  EXPECT_EQ(HtmlToText(html, 100).status().code(),
            absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace pimap::convert
