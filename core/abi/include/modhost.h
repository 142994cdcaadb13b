/*
 * modhost.h: the modhost module contract for C authors.
 *
 * This header mirrors the Rust crate modhost-abi (core/abi/src). Both describe the same
 * bytes; the test suite compiles a C module against this header and loads it beside Rust
 * ones, so a divergence fails the tests.
 *
 * A module is an exported, non-static `const modhost_descriptor` whose symbol is the module's
 * name (as in Mesos). Memory rules:
 *   - what the host passes in (modhost_bytes, modhost_parameter) is borrowed for the call;
 *   - what a module returns (results, error texts) goes in a modhost_buffer carrying the
 *     module's own release function, which the host calls exactly once, possibly later
 *     and from another thread (it keeps a round's offers without copying them);
 *   - an instance is released by the destroy entry at the start of its vtable.
 * No function may let a C++ exception or a longjmp cross the boundary.
 */
#ifndef MODHOST_H
#define MODHOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MODHOST_MAGIC "MODHOST\x01" /* 8 bytes, no terminator is stored */
#define MODHOST_ABI_MAJOR 1
#define MODHOST_ABI_MINOR 2
/* The modhost-abi version this header belongs to; put it in host_version. */
#define MODHOST_VERSION "0.1.0"

#define MODHOST_FLAG_THREAD_SAFE (1u << 0)
#define MODHOST_FLAG_SINGLETON (1u << 1)
/* ABI 1.1: the module's message methods read and write packed values (modhost_abi::packed)
 * instead of JSON. Leave it clear to be sent JSON. */
#define MODHOST_FLAG_PACKED_MESSAGES (1u << 2)

typedef enum modhost_kind {
    MODHOST_KIND_ALLOCATOR = 1,
    MODHOST_KIND_ANONYMOUS = 2,
    MODHOST_KIND_HOOK = 3,
    MODHOST_KIND_ISOLATOR = 4,
    MODHOST_KIND_TEST_MODULE = 5,
    MODHOST_KIND_VM = 6
} modhost_kind;

typedef int32_t modhost_status;
#define MODHOST_OK 0
#define MODHOST_ERROR 1 /* error buffer filled */
#define MODHOST_PANIC 2 /* error buffer filled; used by Rust modules for caught panics */

/* Bytes borrowed for one call. */
typedef struct modhost_bytes {
    const uint8_t *ptr;
    size_t len;
} modhost_bytes;

/* Bytes owned by their producer, freed by its release function. */
typedef struct modhost_buffer {
    uint8_t *ptr;
    size_t len;
    size_t cap;
    void (*release)(uint8_t *ptr, size_t len, size_t cap);
} modhost_buffer;

typedef struct modhost_parameter {
    modhost_bytes key;   /* UTF-8 */
    modhost_bytes value; /* UTF-8 */
} modhost_parameter;

typedef struct modhost_instance {
    void *self;
    const void *vtable; /* the kind's vtable; starts with size and destroy */
} modhost_instance;

typedef bool (*modhost_compatible_fn)(modhost_buffer *reason);
typedef modhost_status (*modhost_create_fn)(const modhost_parameter *parameters, size_t n,
                                            modhost_instance *out, modhost_buffer *error);

typedef struct modhost_descriptor {
    uint8_t magic[8];
    uint16_t abi_major;
    uint16_t abi_minor;
    uint32_t size; /* sizeof(modhost_descriptor) */
    uint32_t flags;
    uint32_t kind; /* a modhost_kind */
    const char *host_version;
    const char *author_name;
    const char *author_email;
    const char *description;
    modhost_compatible_fn compatible; /* may be NULL */
    modhost_create_fn create;
} modhost_descriptor;

/* Every vtable begins with these two fields. */
typedef struct modhost_vtable_header {
    size_t size;
    void (*destroy)(void *self);
} modhost_vtable_header;

/* TestModule (Mesos's test kind). parameters() fills out with a JSON array of
 * {"key": ..., "value": ...} objects. */
typedef struct modhost_test_module_vtable {
    size_t size;
    void (*destroy)(void *self);
    modhost_status (*foo)(void *self, char a, long b, int *out, modhost_buffer *error);
    modhost_status (*bar)(void *self, float a, double b, int *out, modhost_buffer *error);
    modhost_status (*baz)(void *self, int a, int b, int *out, modhost_buffer *error);
    modhost_status (*parameters)(void *self, modhost_buffer *out, modhost_buffer *error);
} modhost_test_module_vtable;

/* Anonymous: no callbacks. */
typedef struct modhost_anonymous_vtable {
    size_t size;
    void (*destroy)(void *self);
} modhost_anonymous_vtable;

/*
 * The message kinds: Allocator, Hook, Isolator. Every method takes a JSON request (borrowed)
 * and, on MODHOST_OK, fills `output` with a JSON response in a module-owned buffer (packed
 * values both ways instead when the descriptor sets MODHOST_FLAG_PACKED_MESSAGES, as every
 * Rust module does). The request and response of each method are the serde forms of the Rust
 * types in core/abi/src/kinds/{allocator,hook,isolator}.rs; a response of "null" means
 * "nothing" (for a decorator: leave the field as it is). allocate answers in the packed
 * offers layout either way. Entries are in the order of the Rust traits and are only ever
 * appended.
 */
typedef modhost_status (*modhost_message_fn)(void *self, modhost_bytes input, modhost_buffer *output,
                                             modhost_buffer *error);

typedef struct modhost_allocator_vtable {
    size_t size;
    void (*destroy)(void *self);
    modhost_message_fn initialize;
    modhost_message_fn add_framework;
    modhost_message_fn remove_framework;
    modhost_message_fn activate_framework;
    modhost_message_fn deactivate_framework;
    modhost_message_fn update_framework;
    modhost_message_fn add_agent;
    modhost_message_fn remove_agent;
    modhost_message_fn update_agent;
    modhost_message_fn activate_agent;
    modhost_message_fn deactivate_agent;
    modhost_message_fn recover_resources;
    modhost_message_fn suppress_offers;
    modhost_message_fn revive_offers;
    modhost_message_fn update_weights;
    modhost_message_fn pause;
    modhost_message_fn resume;
    modhost_message_fn allocate; /* {"now": seconds} -> packed offers, not JSON: little-endian
                                  * "MHO2", u32 count, then per offer: str framework_id,
                                  * str role (empty: the framework's only role), str agent_id,
                                  * u32 n, n x (str name, f64 amount); str = u32 length +
                                  * UTF-8 bytes. ABI 1.1's "MHOF" layout, without the role, is
                                  * read too. */
    modhost_message_fn offers_made; /* {"offers":[...]} after a {"now","dry_run":true} round */
    /* ABI 1.2: {"role","guarantees":{name:amount},"limits":{name:amount}}. An allocator built
     * for ABI 1.1 sets `size` to offsetof(modhost_allocator_vtable, update_quota); the host
     * then refuses quota and reservations for it. */
    modhost_message_fn update_quota;
    /* ABI 1.2: {"agent_id","operations":[{"type":"reserve"|"unreserve","resources":{...}}]};
     * a reserved resource is named "cpus(role)". */
    modhost_message_fn update_available;
} modhost_allocator_vtable;

typedef struct modhost_hook_vtable {
    size_t size;
    void (*destroy)(void *self);
    modhost_message_fn master_launch_task_label_decorator;
    modhost_message_fn master_launch_task_resource_decorator;
    modhost_message_fn agent_run_task_label_decorator;
    modhost_message_fn agent_executor_environment_decorator;
    modhost_message_fn master_agent_lost_hook;
    modhost_message_fn agent_task_status_decorator;
    modhost_message_fn agent_resources_decorator;
    modhost_message_fn agent_attributes_decorator;
    modhost_message_fn agent_remove_executor_hook;
    modhost_message_fn agent_post_fetch_hook;
} modhost_hook_vtable;

typedef struct modhost_isolator_vtable {
    size_t size;
    void (*destroy)(void *self);
    modhost_message_fn recover;
    modhost_message_fn prepare;
    modhost_message_fn isolate;
    modhost_message_fn watch;
    modhost_message_fn update;
    modhost_message_fn usage;
    modhost_message_fn status;
    modhost_message_fn cleanup;
} modhost_isolator_vtable;

/* Vm: an interpreter with a script. `function` is UTF-8; `input` and the answer in `output`
 * are JSON. has_function writes its answer to `out`. describe answers a JSON object
 * {"language","version","script","functions":[...]}; take_output a JSON list of the lines the
 * script printed since the last take_output (since ABI 1.1 also an empty output: no lines).
 * call_packed (ABI 1.1) is call with `input` and the answer in the packed value format (see
 * modhost_abi::packed); a Vm built for ABI 1.0 sets `size` to
 * offsetof(modhost_vm_vtable, call_packed) and the host calls it in JSON. */
typedef struct modhost_vm_vtable {
    size_t size;
    void (*destroy)(void *self);
    modhost_status (*call)(void *self, modhost_bytes function, modhost_bytes input, modhost_buffer *output,
                           modhost_buffer *error);
    modhost_status (*has_function)(void *self, modhost_bytes function, bool *out, modhost_buffer *error);
    modhost_status (*describe)(void *self, modhost_buffer *output, modhost_buffer *error);
    modhost_status (*take_output)(void *self, modhost_buffer *output, modhost_buffer *error);
    modhost_status (*call_packed)(void *self, modhost_bytes function, modhost_bytes input, modhost_buffer *output,
                                  modhost_buffer *error);
} modhost_vm_vtable;

#ifdef __cplusplus
}
#endif

#endif /* MODHOST_H */
