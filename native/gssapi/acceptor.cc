// The GSS-API acceptor behind SASL GSSAPI (RFC 4752), over MIT Kerberos' libgssapi_krb5: one
// GssContext per AUTH exchange. It does what the `kerberos` npm package's KerberosServer does
// (gss_acquire_cred + gss_accept_sec_context) and what that package lacks on the server side:
// gss_wrap and gss_unwrap on the accepted context, which RFC 4752 §3.1's security-layer
// exchange needs. No Kerberos cryptography is done here: every token is made and checked by
// libgssapi_krb5. Used by src/auth/sasl/gssapi-native.ts.
//
//   new GssContext(service, keytab)  service: "pop@host" (GSS_C_NT_HOSTBASED_SERVICE);
//                                    keytab: a path, or "" for the default (KRB5_KTNAME)
//   step(token): Promise<{ complete, output, principal? }>   gss_accept_sec_context, off the loop
//   wrap(data): Buffer      gss_wrap without confidentiality (RFC 4752 §3.1)
//   unwrap(token): Buffer   gss_unwrap
//   dispose()               deletes the context and credential now instead of at GC
#include <napi.h>

#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>
}

namespace {

std::string StatusText(OM_uint32 status, int type) {
  std::string out;
  OM_uint32 more = 0;
  do {
    OM_uint32 minor = 0;
    gss_buffer_desc text = GSS_C_EMPTY_BUFFER;
    if (GSS_ERROR(gss_display_status(&minor, status, type, GSS_C_NO_OID, &more, &text))) break;
    if (!out.empty()) out += "; ";
    out.append(static_cast<const char*>(text.value), text.length);
    gss_release_buffer(&minor, &text);
  } while (more != 0);
  return out;
}

std::string GssError(const char* what, OM_uint32 major, OM_uint32 minor) {
  std::string out = std::string(what) + ": " + StatusText(major, GSS_C_GSS_CODE);
  if (minor != 0) out += ": " + StatusText(minor, GSS_C_MECH_CODE);
  return out;
}

bool SameOid(gss_const_OID a, gss_const_OID b) {
  return a != GSS_C_NO_OID && b != GSS_C_NO_OID && a->length == b->length && std::memcmp(a->elements, b->elements, a->length) == 0;
}

struct State {
  std::string service;
  std::string keytab;
  gss_cred_id_t cred = GSS_C_NO_CREDENTIAL;
  gss_ctx_id_t ctx = GSS_C_NO_CONTEXT;
  bool complete = false;
  bool busy = false;

  ~State() { Release(); }

  void Release() {
    OM_uint32 minor = 0;
    if (ctx != GSS_C_NO_CONTEXT) gss_delete_sec_context(&minor, &ctx, GSS_C_NO_BUFFER);
    if (cred != GSS_C_NO_CREDENTIAL) gss_release_cred(&minor, &cred);
    complete = false;
  }

  // The acceptor credential for service@host from the keytab; an error names what is missing.
  std::string Acquire() {
    OM_uint32 minor = 0;
    gss_buffer_desc nameBuf{service.size(), const_cast<char*>(service.data())};
    gss_name_t name = GSS_C_NO_NAME;
    OM_uint32 major = gss_import_name(&minor, &nameBuf, GSS_C_NT_HOSTBASED_SERVICE, &name);
    if (GSS_ERROR(major)) return GssError("gss_import_name", major, minor);
    gss_key_value_element_desc element{"keytab", keytab.c_str()};
    gss_key_value_set_desc store{1, &element};
    gss_OID_set_desc mechs{1, gss_mech_krb5};
    major = gss_acquire_cred_from(&minor, name, GSS_C_INDEFINITE, &mechs, GSS_C_ACCEPT,
                                  keytab.empty() ? GSS_C_NO_CRED_STORE : &store, &cred, nullptr, nullptr);
    OM_uint32 ignored = 0;
    gss_release_name(&ignored, &name);
    if (GSS_ERROR(major)) return GssError("gss_acquire_cred (keytab)", major, minor);
    return "";
  }
};

class StepWorker : public Napi::AsyncWorker {
 public:
  StepWorker(Napi::Env env, Napi::Object owner, State* state, std::vector<unsigned char> token)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), state_(state), token_(std::move(token)) {
    owner_ = Napi::Persistent(owner);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    if (state_->cred == GSS_C_NO_CREDENTIAL) {
      std::string err = state_->Acquire();
      if (!err.empty()) {
        error_ = err;
        serverError_ = true;
        return;
      }
    }
    OM_uint32 minor = 0;
    gss_buffer_desc input{token_.size(), token_.data()};
    gss_buffer_desc output = GSS_C_EMPTY_BUFFER;
    gss_name_t client = GSS_C_NO_NAME;
    gss_OID mech = GSS_C_NO_OID;
    OM_uint32 flags = 0;
    OM_uint32 major = gss_accept_sec_context(&minor, &state_->ctx, state_->cred, &input, GSS_C_NO_CHANNEL_BINDINGS,
                                             &client, &mech, &output, &flags, nullptr, nullptr);
    OM_uint32 ignored = 0;
    if (output.length > 0) out_.assign(static_cast<unsigned char*>(output.value), static_cast<unsigned char*>(output.value) + output.length);
    gss_release_buffer(&ignored, &output);
    if (GSS_ERROR(major)) {
      error_ = GssError("gss_accept_sec_context", major, minor);
      gss_release_name(&ignored, &client);
      return;
    }
    if (major & GSS_S_CONTINUE_NEEDED) {
      gss_release_name(&ignored, &client);
      return;
    }
    // Complete: only Kerberos 5 itself (not SPNEGO), not anonymous, a Kerberos principal name.
    if (!SameOid(mech, gss_mech_krb5)) error_ = "the security context is not Kerberos 5";
    else if (flags & GSS_C_ANON_FLAG) error_ = "anonymous Kerberos principal";
    else {
      gss_buffer_desc text = GSS_C_EMPTY_BUFFER;
      gss_OID type = GSS_C_NO_OID;
      major = gss_display_name(&minor, client, &text, &type);
      if (GSS_ERROR(major)) error_ = GssError("gss_display_name", major, minor);
      else if (!SameOid(type, GSS_KRB5_NT_PRINCIPAL_NAME)) error_ = "the client name is not a Kerberos principal";
      else principal_.assign(static_cast<const char*>(text.value), text.length);
      gss_release_buffer(&ignored, &text);
    }
    gss_release_name(&ignored, &client);
    if (error_.empty()) state_->complete = true;
  }

  void OnOK() override {
    Napi::Env env = Env();
    state_->busy = false;
    if (!error_.empty()) {
      Napi::Error e = Napi::Error::New(env, error_);
      e.Set("serverError", Napi::Boolean::New(env, serverError_));
      deferred_.Reject(e.Value());
      return;
    }
    Napi::Object result = Napi::Object::New(env);
    result.Set("complete", Napi::Boolean::New(env, state_->complete));
    result.Set("output", Napi::Buffer<unsigned char>::Copy(env, out_.data(), out_.size()));
    if (state_->complete) result.Set("principal", Napi::String::New(env, principal_));
    deferred_.Resolve(result);
  }

  void OnError(const Napi::Error& e) override {
    state_->busy = false;
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference owner_;  // keeps the GssContext (and so state_) alive while Execute runs
  State* state_;
  std::vector<unsigned char> token_;
  std::vector<unsigned char> out_;
  std::string principal_;
  std::string error_;
  bool serverError_ = false;
};

class GssContext : public Napi::ObjectWrap<GssContext> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "GssContext",
                       {InstanceMethod("step", &GssContext::Step), InstanceMethod("wrap", &GssContext::WrapToken),
                        InstanceMethod("unwrap", &GssContext::UnwrapToken), InstanceMethod("dispose", &GssContext::Dispose)});
  }

  explicit GssContext(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GssContext>(info) {
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
      Napi::TypeError::New(info.Env(), "GssContext(service, keytab): two strings").ThrowAsJavaScriptException();
      return;
    }
    state_.service = info[0].As<Napi::String>().Utf8Value();
    state_.keytab = info[1].As<Napi::String>().Utf8Value();
  }

 private:
  static bool BufferArg(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsBuffer()) {
      Napi::TypeError::New(info.Env(), "expected a Buffer").ThrowAsJavaScriptException();
      return false;
    }
    return true;
  }

  Napi::Value Step(const Napi::CallbackInfo& info) {
    if (!BufferArg(info)) return info.Env().Undefined();
    if (state_.busy || state_.complete) {
      Napi::Error::New(info.Env(), state_.busy ? "a step is running" : "the context is complete").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    auto buf = info[0].As<Napi::Buffer<unsigned char>>();
    state_.busy = true;
    auto* worker = new StepWorker(info.Env(), info.This().As<Napi::Object>(), &state_,
                                  std::vector<unsigned char>(buf.Data(), buf.Data() + buf.Length()));
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  }

  // gss_wrap / gss_unwrap: in memory, cheap; only on a complete context.
  Napi::Value Transform(const Napi::CallbackInfo& info, bool wrap) {
    Napi::Env env = info.Env();
    if (!BufferArg(info)) return env.Undefined();
    if (!state_.complete || state_.busy) {
      Napi::Error::New(env, "the security context is not established").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    auto buf = info[0].As<Napi::Buffer<unsigned char>>();
    gss_buffer_desc input{buf.Length(), buf.Data()};
    gss_buffer_desc output = GSS_C_EMPTY_BUFFER;
    OM_uint32 minor = 0;
    OM_uint32 major = wrap ? gss_wrap(&minor, state_.ctx, 0, GSS_C_QOP_DEFAULT, &input, nullptr, &output)
                           : gss_unwrap(&minor, state_.ctx, &input, &output, nullptr, nullptr);
    if (GSS_ERROR(major)) {
      OM_uint32 ignored = 0;
      gss_release_buffer(&ignored, &output);
      Napi::Error::New(env, GssError(wrap ? "gss_wrap" : "gss_unwrap", major, minor)).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Buffer<unsigned char> result = Napi::Buffer<unsigned char>::Copy(env, static_cast<unsigned char*>(output.value), output.length);
    gss_release_buffer(&minor, &output);
    return result;
  }

  Napi::Value WrapToken(const Napi::CallbackInfo& info) { return Transform(info, true); }
  Napi::Value UnwrapToken(const Napi::CallbackInfo& info) { return Transform(info, false); }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    if (!state_.busy) state_.Release();
    return info.Env().Undefined();
  }

  State state_;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("GssContext", GssContext::Define(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(poplar_gssapi, Init)
