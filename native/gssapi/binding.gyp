{
  "targets": [
    {
      "target_name": "poplar_gssapi",
      "sources": ["acceptor.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-fstack-protector-strong"],
      "libraries": ["-lgssapi_krb5", "-lkrb5"]
    }
  ]
}
