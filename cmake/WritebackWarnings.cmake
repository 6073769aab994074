# Project-wide warnings: -Wall -Wextra -Werror for our code only. Generated
# protobuf/gRPC code is compiled without -Werror (see proto/CMakeLists.txt).
function(wb_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror -Wno-unused-parameter)
endfunction()
