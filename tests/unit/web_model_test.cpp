// The web page's pure logic (web/js/model.js, time.js, api.js's error mapping): the Node tests
// in tests/web/ (node --test), run here so ctest reports them with the other unit tests. TZ is
// set to a zone without daylight saving and off UTC by a half hour, so the local-time
// conversions of due dates are checked exactly.

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

TEST(WebPageModel, NodeTestsOfTheModelTimeAndErrorMapping) {
  const std::string cmd = "cd '" TASKSTREAM_SOURCE_DIR "' && TZ=Asia/Kolkata node --test tests/web/ 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  while (std::size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("# fail 0"), std::string::npos) << out;
  EXPECT_EQ(out.find("# pass 0"), std::string::npos) << "no test ran:\n" << out;
}
