# cmake -DINPUT=FILE -DOUTPUT=FILE.cc -P embed_dictionary.cmake: the bytes of
# the default event dictionary as a C++ array (event_dictionary.cc).
file(READ ${INPUT} hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR size "${hex_length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUTPUT}
  "// Generated from ${INPUT} by core/http/embed_dictionary.cmake.\n"
  "#include <cstddef>\n"
  "namespace pimap::http {\n"
  "extern const unsigned char kDefaultEventDictionary[] = {${bytes}};\n"
  "extern const size_t kDefaultEventDictionarySize = ${size};\n"
  "}  // namespace pimap::http\n")
