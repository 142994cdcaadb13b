/*
 * A TestModule written in C against modhost.h: the same semantics as the Rust example, so
 * one test table serves both and proves the header and the Rust layout agree.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "modhost.h"

typedef struct c_module {
    int sum;           /* operation=sum was given */
    char *parameters;  /* JSON of the parameters, built at create */
    size_t parameters_len;
} c_module;

static void release(uint8_t *ptr, size_t len, size_t cap) {
    (void)len;
    (void)cap;
    free(ptr);
}

static void fill(modhost_buffer *buffer, const char *text, size_t len) {
    buffer->ptr = malloc(len ? len : 1);
    memcpy(buffer->ptr, text, len);
    buffer->len = len;
    buffer->cap = len;
    buffer->release = release;
}

static int equals(modhost_bytes bytes, const char *text) {
    return bytes.len == strlen(text) && memcmp(bytes.ptr, text, bytes.len) == 0;
}

static void destroy(void *self) {
    c_module *module = self;
    free(module->parameters);
    free(module);
}

static modhost_status foo(void *self, char a, long b, int *out, modhost_buffer *error) {
    (void)self;
    (void)error;
    *out = (int)(a + b);
    return MODHOST_OK;
}

static modhost_status bar(void *self, float a, double b, int *out, modhost_buffer *error) {
    (void)self;
    (void)error;
    *out = (int)(a * b);
    return MODHOST_OK;
}

static modhost_status baz(void *self, int a, int b, int *out, modhost_buffer *error) {
    (void)error;
    *out = ((c_module *)self)->sum ? a + b : -1;
    return MODHOST_OK;
}

static modhost_status parameters(void *self, modhost_buffer *out, modhost_buffer *error) {
    (void)error;
    c_module *module = self;
    fill(out, module->parameters, module->parameters_len);
    return MODHOST_OK;
}

static const modhost_test_module_vtable VTABLE = {
    sizeof(modhost_test_module_vtable), destroy, foo, bar, baz, parameters,
};

/* Appends text to a growing JSON string (keys and values here need no escaping beyond
 * what the tests pass: plain ASCII without quotes or backslashes). */
static void append(char **json, size_t *len, const uint8_t *text, size_t n) {
    *json = realloc(*json, *len + n + 1);
    memcpy(*json + *len, text, n);
    *len += n;
    (*json)[*len] = 0;
}
#define APPEND_LITERAL(json, len, s) append(json, len, (const uint8_t *)(s), strlen(s))

static modhost_status create(const modhost_parameter *params, size_t n, modhost_instance *out,
                             modhost_buffer *error) {
    int sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (equals(params[i].key, "operation")) {
            if (!equals(params[i].value, "sum")) {
                static const char message[] = "unknown operation; the only one is 'sum'";
                fill(error, message, sizeof message - 1);
                return MODHOST_ERROR;
            }
            sum = 1;
        }
    }
    c_module *module = calloc(1, sizeof *module);
    module->sum = sum;
    APPEND_LITERAL(&module->parameters, &module->parameters_len, "[");
    for (size_t i = 0; i < n; i++) {
        APPEND_LITERAL(&module->parameters, &module->parameters_len, i ? ",{\"key\":\"" : "{\"key\":\"");
        append(&module->parameters, &module->parameters_len, params[i].key.ptr, params[i].key.len);
        APPEND_LITERAL(&module->parameters, &module->parameters_len, "\",\"value\":\"");
        append(&module->parameters, &module->parameters_len, params[i].value.ptr, params[i].value.len);
        APPEND_LITERAL(&module->parameters, &module->parameters_len, "\"}");
    }
    APPEND_LITERAL(&module->parameters, &module->parameters_len, "]");
    out->self = module;
    out->vtable = &VTABLE;
    return MODHOST_OK;
}

static bool compatible(modhost_buffer *reason) {
    (void)reason;
    return true;
}

const modhost_descriptor org_modhost_c_TestModule = {
    .magic = MODHOST_MAGIC,
    .abi_major = MODHOST_ABI_MAJOR,
    .abi_minor = MODHOST_ABI_MINOR,
    .size = sizeof(modhost_descriptor),
    .flags = 0,
    .kind = MODHOST_KIND_TEST_MODULE,
    .host_version = MODHOST_VERSION,
    .author_name = "modhost",
    .author_email = "modhost@example.invalid",
    .description = "The TestModule example, written in C against modhost.h.",
    .compatible = compatible,
    .create = create,
};

/*
 * A Vm as a module built for ABI 1.0 has it: its vtable ends before call_packed, so the host
 * must call it in JSON. Its one function, "echo", answers the message it was given.
 */
/* The Vm and the hook below keep no state: one static instance serves every create. */
static int stateless_instance;

static void destroy_nothing(void *self) {
    (void)self;
}

static modhost_status create_stateless(const void *vtable, modhost_instance *out) {
    out->self = &stateless_instance;
    out->vtable = vtable;
    return MODHOST_OK;
}

static modhost_status vm_call(void *self, modhost_bytes function, modhost_bytes input, modhost_buffer *output,
                              modhost_buffer *error) {
    (void)self;
    if (!equals(function, "echo")) {
        static const char message[] = "the C Vm defines only 'echo'";
        fill(error, message, sizeof message - 1);
        return MODHOST_ERROR;
    }
    fill(output, (const char *)input.ptr, input.len);
    return MODHOST_OK;
}

static modhost_status vm_has_function(void *self, modhost_bytes function, bool *out, modhost_buffer *error) {
    (void)self;
    (void)error;
    *out = equals(function, "echo");
    return MODHOST_OK;
}

static modhost_status vm_describe(void *self, modhost_buffer *output, modhost_buffer *error) {
    (void)self;
    (void)error;
    static const char info[] = "{\"language\":\"c\",\"version\":\"C11\",\"script\":\"\",\"functions\":[\"echo\"]}";
    fill(output, info, sizeof info - 1);
    return MODHOST_OK;
}

static modhost_status vm_take_output(void *self, modhost_buffer *output, modhost_buffer *error) {
    (void)self;
    (void)error;
    fill(output, "[]", 2);
    return MODHOST_OK;
}

static const modhost_vm_vtable VM_VTABLE_1_0 = {
    .size = offsetof(modhost_vm_vtable, call_packed),
    .destroy = destroy_nothing,
    .call = vm_call,
    .has_function = vm_has_function,
    .describe = vm_describe,
    .take_output = vm_take_output,
    .call_packed = NULL,
};

static modhost_status vm_create(const modhost_parameter *params, size_t n, modhost_instance *out,
                                modhost_buffer *error) {
    (void)params;
    (void)n;
    (void)error;
    return create_stateless(&VM_VTABLE_1_0, out);
}

const modhost_descriptor org_modhost_c_Vm_1_0 = {
    .magic = MODHOST_MAGIC,
    .abi_major = MODHOST_ABI_MAJOR,
    .abi_minor = 0,
    .size = sizeof(modhost_descriptor),
    .flags = 0,
    .kind = MODHOST_KIND_VM,
    .host_version = MODHOST_VERSION,
    .author_name = "modhost",
    .author_email = "modhost@example.invalid",
    .description = "An echoing Vm, written in C as a module built for ABI 1.0 is (no call_packed).",
    .compatible = NULL,
    .create = vm_create,
};

/*
 * A Hook that speaks JSON (its descriptor leaves MODHOST_FLAG_PACKED_MESSAGES clear): the
 * launch label decorator checks it was sent a JSON object and adds one label; every other
 * method answers "null" (no change).
 */
static modhost_status hook_no_change(void *self, modhost_bytes input, modhost_buffer *output, modhost_buffer *error) {
    (void)self;
    (void)input;
    (void)error;
    fill(output, "null", 4);
    return MODHOST_OK;
}

static modhost_status hook_launch_labels(void *self, modhost_bytes input, modhost_buffer *output,
                                         modhost_buffer *error) {
    (void)self;
    if (input.len == 0 || input.ptr[0] != '{') {
        static const char message[] = "the C hook expected a JSON object";
        fill(error, message, sizeof message - 1);
        return MODHOST_ERROR;
    }
    static const char labels[] = "[{\"key\":\"written_in\",\"value\":\"C\"}]";
    fill(output, labels, sizeof labels - 1);
    return MODHOST_OK;
}

static const modhost_hook_vtable HOOK_VTABLE = {
    .size = sizeof(modhost_hook_vtable),
    .destroy = destroy_nothing,
    .master_launch_task_label_decorator = hook_launch_labels,
    .master_launch_task_resource_decorator = hook_no_change,
    .agent_run_task_label_decorator = hook_no_change,
    .agent_executor_environment_decorator = hook_no_change,
    .master_agent_lost_hook = hook_no_change,
    .agent_task_status_decorator = hook_no_change,
    .agent_resources_decorator = hook_no_change,
    .agent_attributes_decorator = hook_no_change,
    .agent_remove_executor_hook = hook_no_change,
    .agent_post_fetch_hook = hook_no_change,
};

static modhost_status hook_create(const modhost_parameter *params, size_t n, modhost_instance *out,
                                  modhost_buffer *error) {
    (void)params;
    (void)n;
    (void)error;
    return create_stateless(&HOOK_VTABLE, out);
}

const modhost_descriptor org_modhost_c_JsonHook = {
    .magic = MODHOST_MAGIC,
    .abi_major = MODHOST_ABI_MAJOR,
    .abi_minor = MODHOST_ABI_MINOR,
    .size = sizeof(modhost_descriptor),
    .flags = 0,
    .kind = MODHOST_KIND_HOOK,
    .host_version = MODHOST_VERSION,
    .author_name = "modhost",
    .author_email = "modhost@example.invalid",
    .description = "A label hook in C that reads and writes JSON (no MODHOST_FLAG_PACKED_MESSAGES).",
    .compatible = NULL,
    .create = hook_create,
};

/*
 * An Allocator as a module built for ABI 1.1 has it: its vtable ends before update_quota
 * (appended in ABI 1.2), so the host refuses quota for it. It speaks JSON, keeps nothing and
 * offers nothing: every notification answers "null", allocate an empty packed offers list.
 */
static modhost_status allocate_nothing(void *self, modhost_bytes input, modhost_buffer *output,
                                       modhost_buffer *error) {
    (void)self;
    (void)input;
    (void)error;
    static const char no_offers[8] = {'M', 'H', 'O', 'F', 0, 0, 0, 0};
    fill(output, no_offers, sizeof no_offers);
    return MODHOST_OK;
}

static const modhost_allocator_vtable ALLOCATOR_VTABLE_1_1 = {
    .size = offsetof(modhost_allocator_vtable, update_quota),
    .destroy = destroy_nothing,
    .initialize = hook_no_change,
    .add_framework = hook_no_change,
    .remove_framework = hook_no_change,
    .activate_framework = hook_no_change,
    .deactivate_framework = hook_no_change,
    .update_framework = hook_no_change,
    .add_agent = hook_no_change,
    .remove_agent = hook_no_change,
    .update_agent = hook_no_change,
    .activate_agent = hook_no_change,
    .deactivate_agent = hook_no_change,
    .recover_resources = hook_no_change,
    .suppress_offers = hook_no_change,
    .revive_offers = hook_no_change,
    .update_weights = hook_no_change,
    .pause = hook_no_change,
    .resume = hook_no_change,
    .allocate = allocate_nothing,
    .offers_made = hook_no_change,
    .update_quota = NULL,
    .update_available = NULL,
};

static modhost_status allocator_create(const modhost_parameter *params, size_t n, modhost_instance *out,
                                       modhost_buffer *error) {
    (void)params;
    (void)n;
    (void)error;
    return create_stateless(&ALLOCATOR_VTABLE_1_1, out);
}

const modhost_descriptor org_modhost_c_Allocator_1_1 = {
    .magic = MODHOST_MAGIC,
    .abi_major = MODHOST_ABI_MAJOR,
    .abi_minor = 1,
    .size = sizeof(modhost_descriptor),
    .flags = 0,
    .kind = MODHOST_KIND_ALLOCATOR,
    .host_version = MODHOST_VERSION,
    .author_name = "modhost",
    .author_email = "modhost@example.invalid",
    .description = "An allocator that offers nothing, written in C as a module built for ABI 1.1 is (no update_quota).",
    .compatible = NULL,
    .create = allocator_create,
};
