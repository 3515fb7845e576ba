/* kiln.train._treewalk: LightGBM's trees walked from flat arrays, many rows in lockstep.
 *
 * What it computes is LightGBM's raw score (Tree::Predict summed over the trees in tree order, so
 * every double is the one LightGBM adds), decision for decision:
 *   - numerical split: value <= threshold goes left. NaN goes where LightGBM sends it (missing
 *     type NaN: the default side; missing type None: where 0.0 goes); the flag NAN_RIGHT says.
 *   - zero-as-missing split (missing type Zero): NaN is read as 0.0, and 0.0 goes to the default
 *     side (DEFAULT_RIGHT).
 *   - categorical split: the value truncated to an int goes left when its bit is set in the
 *     split's bitset; a negative value, NaN or one past INT_MAX goes right (as LightGBM on x86,
 *     where the int conversion of NaN is negative). Where a tree's every (column, bitset) recurs
 *     in the forest, each is a "test": computed once per row into an extra column (0 inside the
 *     set, 1 outside), and the split becomes a numerical one on that column at 0.5. Elsewhere
 *     the split is decided in place (CATEGORICAL) against its bitset.
 *   - LightGBM reads |value| <= 1e-35 as 0.0 before any tree sees it (its dense-row reader), and
 *     so does this walk.
 *
 * Why it is faster than LightGBM's own predictor on one thread (about 2-9x; kiln/train/_forest.py
 * has the numbers):
 *   - the rows go through in blocks, tree by tree, so one tree's nodes stay in cache for the
 *     whole block instead of every tree being read again for every row;
 *   - LANES rows walk a tree together, each step without a branch (the next node is
 *     child[2 * node + (value > threshold)]); a leaf's two children are the leaf itself, so every
 *     row takes the tree's depth in steps and the CPU overlaps the LANES independent loads.
 *     That is a PLAIN tree's walk; a MIXED one (with a zero-missing or an in-place categorical
 *     split) decides each step with go_right, whose branches the CPU must guess. A block with no
 *     NaN in it skips the NaN test.
 *
 * The arrays come from kiln.train._forest, which builds them from the booster's own model text.
 * A Forest checks once, when made, that every index stays inside its arrays and inside a row; it
 * holds the arrays' buffers while it lives. The GIL is released while walking.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NAN_RIGHT 1     /* numerical split: NaN goes right */
#define ZERO_MISSING 2  /* numerical split with missing type Zero */
#define DEFAULT_RIGHT 4 /* zero-missing split: 0.0 and NaN go right */
#define CATEGORICAL 8   /* categorical split, decided in place against its bitset */
#define SPECIAL (ZERO_MISSING | CATEGORICAL)

#define PLAIN 0 /* numerical splits only (a test's included) */
#define MIXED 1 /* a zero-missing or in-place categorical split too */

#define LANES 16
#define BLOCK 256
#define ZERO_THRESHOLD 1e-35f /* LightGBM's kZeroThreshold, a float */

typedef struct {
    const int32_t *feature; /* a column of the row, or width + a test */
    const double *threshold;
    const int32_t *child; /* 2 per node: left, right; a leaf's are itself */
    const double *value;  /* a leaf's output; 0 elsewhere */
    const uint8_t *flags;
    const int32_t *cat_start; /* a CATEGORICAL split's bitset: bits[cat_start:cat_start + words] */
    const int32_t *cat_words;
    const uint32_t *bits;
} Forest;

/* LightGBM's categorical decision: 0 (left) when v's category is in the bitset, else 1. */
static inline int outside(double v, const uint32_t *bits, int32_t words) {
    if (!(v > -1.0) || v >= 2147483648.0) {
        return 1;
    }
    int32_t category = (int32_t)v;
    int32_t word = category >> 5;
    if (word >= words) {
        return 1;
    }
    return ((bits[word] >> (category & 31)) & 1u) ? 0 : 1;
}

static inline int go_right(const Forest *f, int32_t node, double v) {
    uint8_t flags = f->flags[node];
    if (!(flags & SPECIAL)) {
        return (v > f->threshold[node]) | ((v != v) & flags);
    }
    if (flags & CATEGORICAL) {
        return outside(v, f->bits + f->cat_start[node], f->cat_words[node]);
    }
    if (v != v) {
        v = 0.0;
    }
    if (v == 0.0) {
        return (flags & DEFAULT_RIGHT) != 0;
    }
    return v > f->threshold[node];
}

/* LANES rows of a tree, step by step, each taking the next node by `right`. */
#define LOCKSTEP(right)                                                                         \
    for (int32_t d = 0; d < depth; d++) {                                                       \
        for (int j = 0; j < LANES; j++) {                                                       \
            int32_t k = node[j];                                                                \
            double v = rows[j * width + feature[k]];                                            \
            node[j] = child[2 * k + (right)];                                                   \
        }                                                                                       \
    }

/* One tree over rows [0, n) of x (row-major, width columns), adding each row's leaf value to
 * out[row * outputs + output], LANES rows at a time (the last few one by one). nan: the rows may
 * hold NaN. */
static void walk_tree(const Forest *f, int32_t root, int32_t depth, int kind, int nan,
                      const double *x, int64_t n, int64_t width, double *out, int64_t outputs,
                      int64_t output) {
    const int32_t *feature = f->feature;
    const double *threshold = f->threshold;
    const int32_t *child = f->child;
    const uint8_t *flags = f->flags;
    int64_t r = 0;
    for (; r + LANES <= n; r += LANES) {
        int32_t node[LANES];
        const double *rows = x + r * width;
        for (int j = 0; j < LANES; j++) {
            node[j] = root;
        }
        if (kind == MIXED) {
            LOCKSTEP(go_right(f, k, v))
        } else if (nan) {
            LOCKSTEP((v > threshold[k]) | ((v != v) & flags[k]))
        } else {
            LOCKSTEP(v > threshold[k])
        }
        for (int j = 0; j < LANES; j++) {
            out[(r + j) * outputs + output] += f->value[node[j]];
        }
    }
    for (; r < n; r++) { /* alone, a row stops at its leaf rather than at the tree's depth */
        const double *row = x + r * width;
        int32_t k = root;
        for (int32_t d = 0; d < depth; d++) {
            int32_t next = child[2 * k + go_right(f, k, row[feature[k]])];
            if (next == k) {
                break;
            }
            k = next;
        }
        out[r * outputs + output] += f->value[k];
    }
}

/* The forest: its arrays' buffers, held (and so kept alive and unresized) while it lives. */
#define NARRAYS 14
enum { FEATURE, THRESHOLD, CHILD, VALUE, FLAGS, CAT_START, CAT_WORDS, ROOTS, DEPTH, KIND, OUTPUT,
       TEST_COLUMN, TEST_START, BITS };
static const char *NAMES[NARRAYS] = {
    "feature", "threshold", "child",  "value",       "flags",      "cat_start", "cat_words",
    "roots",   "depth",     "kind",   "output",      "test_column", "test_start", "bits"};
static const Py_ssize_t SIZES[NARRAYS] = {4, 8, 4, 8, 1, 4, 4, 4, 4, 1, 4, 4, 4, 4};

typedef struct {
    PyObject_HEAD
    Py_buffer views[NARRAYS];
    int held;
    Forest forest;
    Py_ssize_t width, outputs, trees, tests;
} ForestObject;

static int take(PyObject *obj, Py_buffer *view, const char *name, Py_ssize_t itemsize,
                int writable) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) != 0) {
        return -1;
    }
    /* the item's kind: float64 for 8 bytes, an integer for 4 or 1 (a byte-order mark aside) */
    const char *format = view->format ? view->format : "B";
    format += strspn(format, "@=<>!");
    const char *kinds = itemsize == 8 ? "d" : "iIlLbB?";
    if (view->itemsize != itemsize || strlen(format) != 1 || !strchr(kinds, format[0])) {
        PyErr_Format(PyExc_ValueError, "%s: expected %s items of %zd bytes", name,
                     itemsize == 8 ? "float64" : "integer", itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

#define BUF(self, i) ((self)->views[i].buf)
#define LEN(self, i) ((self)->views[i].len / SIZES[i])

static void forest_dealloc(ForestObject *self) {
    for (int i = 0; i < self->held; i++) {
        PyBuffer_Release(&self->views[i]);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Forest(width, outputs, feature, threshold, child, value, flags, cat_start, cat_words, roots,
 *        depth, kind, output, test_column, test_start, bits): test t reads column test_column[t] against the bitset
 * bits[test_start[t]:test_start[t + 1]] (test_start has one more entry than there are tests).
 * Checks once that every index stays inside the arrays and inside a row. */
static int forest_init(ForestObject *self, PyObject *args, PyObject *kwargs) {
    PyObject *objs[NARRAYS];
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError, "Forest takes its arguments by position");
        return -1;
    }
    if (self->held) {
        PyErr_SetString(PyExc_TypeError, "a Forest is made once");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "nnOOOOOOOOOOOOOO", &self->width, &self->outputs, &objs[0],
                          &objs[1], &objs[2], &objs[3], &objs[4], &objs[5], &objs[6], &objs[7],
                          &objs[8], &objs[9], &objs[10], &objs[11], &objs[12], &objs[13])) {
        return -1;
    }
    for (; self->held < NARRAYS; self->held++) {
        int i = self->held;
        if (take(objs[i], &self->views[i], NAMES[i], SIZES[i], 0) != 0) {
            return -1;
        }
    }
    Py_ssize_t nodes = LEN(self, FEATURE), trees = LEN(self, ROOTS);
    Py_ssize_t tests = LEN(self, TEST_COLUMN), words = LEN(self, BITS);
    if (self->width <= 0 || self->outputs <= 0 || LEN(self, THRESHOLD) != nodes ||
        LEN(self, CHILD) != 2 * nodes || LEN(self, VALUE) != nodes || LEN(self, FLAGS) != nodes ||
        LEN(self, CAT_START) != nodes || LEN(self, CAT_WORDS) != nodes ||
        LEN(self, DEPTH) != trees || LEN(self, KIND) != trees || LEN(self, OUTPUT) != trees ||
        LEN(self, TEST_START) != tests + 1) {
        PyErr_SetString(PyExc_ValueError, "the forest's arrays do not agree in length");
        return -1;
    }
    const int32_t *feature = BUF(self, FEATURE), *child = BUF(self, CHILD);
    const int32_t *roots = BUF(self, ROOTS), *depth = BUF(self, DEPTH);
    const int32_t *output = BUF(self, OUTPUT), *column = BUF(self, TEST_COLUMN);
    const int32_t *start = BUF(self, TEST_START);
    const int32_t *cat_start = BUF(self, CAT_START), *cat_words = BUF(self, CAT_WORDS);
    const uint8_t *kind = BUF(self, KIND);
    for (Py_ssize_t k = 0; k < nodes; k++) {
        if (feature[k] < 0 || feature[k] >= self->width + tests || child[2 * k] < 0 ||
            child[2 * k] >= nodes || child[2 * k + 1] < 0 || child[2 * k + 1] >= nodes ||
            cat_start[k] < 0 || cat_words[k] < 0 || cat_start[k] > words - cat_words[k]) {
            PyErr_Format(PyExc_ValueError, "node %zd points outside the forest or the row", k);
            return -1;
        }
    }
    for (Py_ssize_t t = 0; t < trees; t++) {
        if (roots[t] < 0 || roots[t] >= nodes || depth[t] < 0 || output[t] < 0 ||
            output[t] >= self->outputs || kind[t] > MIXED) {
            PyErr_Format(PyExc_ValueError, "tree %zd points outside the forest", t);
            return -1;
        }
    }
    for (Py_ssize_t t = 0; t < tests; t++) {
        if (column[t] < 0 || column[t] >= self->width || start[t] < 0 || start[t + 1] < start[t] ||
            start[t + 1] > words) {
            PyErr_Format(PyExc_ValueError, "test %zd points outside the bitsets or the row", t);
            return -1;
        }
    }
    Forest f = {feature,   BUF(self, THRESHOLD), child,          BUF(self, VALUE),
                BUF(self, FLAGS), cat_start,     cat_words, BUF(self, BITS)};
    self->forest = f;
    self->trees = trees;
    self->tests = tests;
    return 0;
}

/* forest.walk(x, out): adds every tree's leaf value to out (rows x outputs, float64), for x
 * (rows x width, float64, C order). */
static PyObject *forest_walk(ForestObject *self, PyObject *args) {
    PyObject *xo, *outo;
    if (self->held != NARRAYS) {
        PyErr_SetString(PyExc_ValueError, "the Forest was not made");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "OO", &xo, &outo)) {
        return NULL;
    }
    Py_buffer xv, outv;
    if (take(xo, &xv, "x", 8, 0) != 0) {
        return NULL;
    }
    if (take(outo, &outv, "out", 8, 1) != 0) {
        PyBuffer_Release(&xv);
        return NULL;
    }
    Py_ssize_t width = self->width, outputs = self->outputs, tests = self->tests;
    Py_ssize_t rows = xv.len / 8 / width, wide = width + tests;
    if (xv.len / 8 != rows * width || outv.len / 8 != rows * outputs) {
        PyErr_Format(PyExc_ValueError, "x must be rows x %zd and out rows x %zd", width, outputs);
        PyBuffer_Release(&xv);
        PyBuffer_Release(&outv);
        return NULL;
    }
    const Forest *f = &self->forest;
    const int32_t *roots = BUF(self, ROOTS), *depth = BUF(self, DEPTH);
    const int32_t *output = BUF(self, OUTPUT), *column = BUF(self, TEST_COLUMN);
    const int32_t *start = BUF(self, TEST_START);
    const uint32_t *bits = BUF(self, BITS);
    const uint8_t *kind = BUF(self, KIND);
    const double *x = xv.buf;
    double *out = outv.buf;
    double *scratch = NULL;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS;
    for (Py_ssize_t first = 0; first < rows; first += BLOCK) {
        Py_ssize_t n = rows - first < BLOCK ? rows - first : BLOCK;
        const double *block = x + first * width;
        int nan = 0, tiny = 0;
        for (Py_ssize_t i = 0; i < n * width; i++) {
            double v = block[i];
            nan |= v != v;
            tiny |= v != 0.0 && fabs(v) <= ZERO_THRESHOLD;
        }
        Py_ssize_t stride = width;
        if (tiny || tests) { /* the block again, tiny values read as 0, the tests after each row */
            Py_ssize_t most = rows < BLOCK ? rows : BLOCK; /* (one row: one row's worth) */
            if (scratch == NULL && (scratch = malloc(sizeof(double) * most * wide)) == NULL) {
                failed = 1;
                break;
            }
            for (Py_ssize_t r = 0; r < n; r++) {
                const double *src = block + r * width;
                double *dst = scratch + r * wide;
                for (Py_ssize_t c = 0; c < width; c++) {
                    double v = src[c];
                    dst[c] = (v != 0.0 && fabs(v) <= ZERO_THRESHOLD) ? 0.0 : v;
                }
                for (Py_ssize_t t = 0; t < tests; t++) {
                    dst[width + t] =
                        (double)outside(dst[column[t]], bits + start[t], start[t + 1] - start[t]);
                }
            }
            block = scratch;
            stride = wide;
        }
        for (Py_ssize_t t = 0; t < self->trees; t++) {
            walk_tree(f, roots[t], depth[t], kind[t], nan, block, n, stride,
                      out + first * outputs, outputs, output[t]);
        }
    }
    Py_END_ALLOW_THREADS;
    free(scratch);
    PyBuffer_Release(&xv);
    PyBuffer_Release(&outv);
    if (failed) {
        return PyErr_NoMemory();
    }
    Py_RETURN_NONE;
}

static PyMethodDef forest_methods[] = {
    {"walk", (PyCFunction)forest_walk, METH_VARARGS,
     "walk(x, out): add every tree's leaf value to out (rows x outputs, float64) for x (rows x "
     "width, float64, C order)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ForestType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "kiln.train._treewalk.Forest",
    .tp_basicsize = sizeof(ForestObject),
    .tp_dealloc = (destructor)forest_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Forest(width, outputs, feature, threshold, child, value, flags, cat_start, cat_words, "
              "roots, depth, kind, output, test_column, test_start, bits): LightGBM's trees as flat arrays.",
    .tp_methods = forest_methods,
    .tp_init = (initproc)forest_init,
    .tp_new = PyType_GenericNew,
};

/* LightGBM's output transforms, in place, with its very arithmetic (so the probabilities are
 * its bits, not one unit in the last place away): sigmoid(out, scale) for a binary objective,
 * softmax(out, classes) for a multiclass one (rows x classes). */
/* What both transforms take: out, a writable float64 buffer (held in view), and one number. */
static int out_and(PyObject *args, const char *format, Py_buffer *view, void *number) {
    PyObject *obj;
    if (!PyArg_ParseTuple(args, format, &obj, number)) {
        return -1;
    }
    return take(obj, view, "out", 8, 1);
}

static PyObject *sigmoid(PyObject *self, PyObject *args) {
    double scale;
    Py_buffer view;
    if (out_and(args, "Od", &view, &scale) != 0) {
        return NULL;
    }
    double *out = view.buf;
    Py_ssize_t n = view.len / 8;
    Py_BEGIN_ALLOW_THREADS;
    for (Py_ssize_t i = 0; i < n; i++) {
        out[i] = 1.0f / (1.0f + exp(-scale * out[i]));
    }
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static PyObject *softmax(PyObject *self, PyObject *args) {
    Py_ssize_t classes;
    Py_buffer view;
    if (out_and(args, "On", &view, &classes) != 0) {
        return NULL;
    }
    Py_ssize_t n = view.len / 8;
    if (classes <= 0 || n % classes != 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "out must be rows x classes");
        return NULL;
    }
    double *out = view.buf;
    Py_BEGIN_ALLOW_THREADS;
    for (Py_ssize_t r = 0; r < n; r += classes) {
        double *row = out + r;
        double most = row[0];
        for (Py_ssize_t k = 1; k < classes; k++) {
            most = row[k] > most ? row[k] : most;
        }
        double sum = 0.0f;
        for (Py_ssize_t k = 0; k < classes; k++) {
            row[k] = exp(row[k] - most);
            sum += row[k];
        }
        for (Py_ssize_t k = 0; k < classes; k++) {
            row[k] /= sum;
        }
    }
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"sigmoid", sigmoid, METH_VARARGS,
     "sigmoid(out, scale): out = 1 / (1 + exp(-scale * out)), in place, as LightGBM computes it."},
    {"softmax", softmax, METH_VARARGS,
     "softmax(out, classes): each row of out (rows x classes) to its softmax, in place, as "
     "LightGBM computes it."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_treewalk", "LightGBM's trees walked from flat arrays.", -1,
    module_methods,
    NULL,
    NULL,
    NULL,
    NULL};

PyMODINIT_FUNC PyInit__treewalk(void) {
    if (PyType_Ready(&ForestType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "Forest", (PyObject *)&ForestType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
