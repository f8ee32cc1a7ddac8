/* The guided filter with the count border, one gray image, in one pass of running sums.

   paperlib.refine._gf_count.filter(guide, src, out, scratch, radius, eps, centre)

   q = GF(src, guide) of He et al. with the paper's border rule: every window mean divides the
   window's sum by the number of its pixels inside the image. The same q as
   paperlib.refine.gf_image's OpenCV path within float32 rounding (tested); the Python function
   paperlib.refine.gf_image.guided_filter_image checks the arguments and calls this when the
   extension was built (setup.py; a C compiler at install time), and takes the OpenCV path
   otherwise.

   Why compiled: OpenCV's ximgproc.guidedFilter runs six box filters and the elementwise steps
   between them as separate passes over the image; here the four window sums of the first stage
   (I, p, I p, I^2) and the two of the second (a, b) are running sums kept per column (vertical)
   and per row (horizontal), and a, b and q are formed as each row's sums are ready, so the image
   is read twice and written three times (a, b, q) in all. Sums are in double precision: the
   running sums do not drift, and var_I = mean(I^2) - mean_I^2 does not cancel.

   Arguments (all checked here again, since a wrong buffer would be read out of bounds):
     guide, src  (H, W) C-contiguous float32 buffers: the gray guide I and the input p.
     out         (H, W) writable C-contiguous float32 buffer for q.
     scratch     a writable C-contiguous float32 buffer of at least 2 H W values (a and b).
     radius      r >= 0: (2r+1) x (2r+1) windows.
     eps         the regularisation added to var_I, > 0.
     centre      a constant subtracted from the guide before the sums (near its mean), which
                 changes neither a nor q and keeps the squares small.
   The GIL is released while the filter runs. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define NOINLINE __declspec(noinline)
#define restrict __restrict
#else
#define NOINLINE
#endif

/* Window sums along one row of per-column sums c (padded with r + 1 zeros on each side, so
   c[-r-1] .. c[W+r] are valid): s[j] = c[j-r] + ... + c[j+r], one running sum per quantity.
   The quantities go together so that their sums form independent dependency chains; kept out
   of line (and every array restrict) so that the compiler keeps the pointers in registers and
   vectorises the column loops. */
static NOINLINE void row_sums4(const double *restrict c0, const double *restrict c1,
                               const double *restrict c2, const double *restrict c3, Py_ssize_t W,
                               Py_ssize_t r, double *restrict s0, double *restrict s1,
                               double *restrict s2, double *restrict s3)
{
    double t0 = 0.0, t1 = 0.0, t2 = 0.0, t3 = 0.0;
    for (Py_ssize_t j = -r - 1; j < r; j++) {     /* the window of column -1 */
        t0 += c0[j]; t1 += c1[j]; t2 += c2[j]; t3 += c3[j];
    }
    for (Py_ssize_t j = 0; j < W; j++) {
        t0 += c0[j + r] - c0[j - r - 1]; s0[j] = t0;
        t1 += c1[j + r] - c1[j - r - 1]; s1[j] = t1;
        t2 += c2[j + r] - c2[j - r - 1]; s2[j] = t2;
        t3 += c3[j + r] - c3[j - r - 1]; s3[j] = t3;
    }
}

static NOINLINE void row_sums2(const double *restrict c0, const double *restrict c1, Py_ssize_t W,
                               Py_ssize_t r, double *restrict s0, double *restrict s1)
{
    double t0 = 0.0, t1 = 0.0;
    for (Py_ssize_t j = -r - 1; j < r; j++) {
        t0 += c0[j]; t1 += c1[j];
    }
    for (Py_ssize_t j = 0; j < W; j++) {
        t0 += c0[j + r] - c0[j - r - 1]; s0[j] = t0;
        t1 += c1[j + r] - c1[j - r - 1]; s1[j] = t1;
    }
}

/* Column sums of stage 1 move down a row: row `enter` (of guide g, input p) comes into the
   window with sign +1, row `leave` (h, pl) goes out; either may be NULL (the window at an edge). */
static NOINLINE void columns4(const float *restrict g, const float *restrict pe,
                              const float *restrict h, const float *restrict pl, double centre,
                              Py_ssize_t W, double *restrict c_I, double *restrict c_p,
                              double *restrict c_Ip, double *restrict c_II)
{
    if (g != NULL && h != NULL) {
        for (Py_ssize_t j = 0; j < W; j++) {
            double x = (double)g[j] - centre, y = pe[j], u = (double)h[j] - centre, v = pl[j];
            c_I[j] += x - u; c_p[j] += y - v; c_Ip[j] += x * y - u * v; c_II[j] += x * x - u * u;
        }
    } else if (g != NULL) {
        for (Py_ssize_t j = 0; j < W; j++) {
            double x = (double)g[j] - centre, y = pe[j];
            c_I[j] += x; c_p[j] += y; c_Ip[j] += x * y; c_II[j] += x * x;
        }
    } else if (h != NULL) {
        for (Py_ssize_t j = 0; j < W; j++) {
            double u = (double)h[j] - centre, v = pl[j];
            c_I[j] -= u; c_p[j] -= v; c_Ip[j] -= u * v; c_II[j] -= u * u;
        }
    }
}

/* The same for stage 2's a and b. */
static NOINLINE void columns2(const float *restrict ae, const float *restrict be,
                              const float *restrict al, const float *restrict bl, Py_ssize_t W,
                              double *restrict c_a, double *restrict c_b)
{
    if (ae != NULL && al != NULL) {
        for (Py_ssize_t j = 0; j < W; j++) {
            c_a[j] += (double)ae[j] - al[j]; c_b[j] += (double)be[j] - bl[j];
        }
    } else if (ae != NULL) {
        for (Py_ssize_t j = 0; j < W; j++) {
            c_a[j] += ae[j]; c_b[j] += be[j];
        }
    } else if (al != NULL) {
        for (Py_ssize_t j = 0; j < W; j++) {
            c_a[j] -= al[j]; c_b[j] -= bl[j];
        }
    }
}

/* One row of a and b from the window sums of stage 1 (inv: 1 / the window's pixel count). */
static NOINLINE void coefficients(const double *restrict s_I, const double *restrict s_p,
                                  const double *restrict s_Ip, const double *restrict s_II,
                                  double f, const double *restrict inv_cols, double eps,
                                  Py_ssize_t W, float *restrict a, float *restrict b)
{
    for (Py_ssize_t j = 0; j < W; j++) {
        double inv = f * inv_cols[j];
        double mean_I = s_I[j] * inv, mean_p = s_p[j] * inv;
        double cov_Ip = s_Ip[j] * inv - mean_I * mean_p;
        double var_I = s_II[j] * inv - mean_I * mean_I;
        double a_j = cov_Ip / (var_I + eps);
        a[j] = (float)a_j;
        b[j] = (float)(mean_p - a_j * mean_I);
    }
}

/* One row of q = mean_a I + mean_b from the window sums of a and b. */
static NOINLINE void output(const double *restrict s_a, const double *restrict s_b,
                            const float *restrict g, double centre, double f,
                            const double *restrict inv_cols, Py_ssize_t W, float *restrict q)
{
    for (Py_ssize_t j = 0; j < W; j++)
        q[j] = (float)((s_a[j] * ((double)g[j] - centre) + s_b[j]) * (f * inv_cols[j]));
}

/* 1 / (pixels of each window inside an axis of n): the count border's divisor, per axis. */
static void inverse_counts(Py_ssize_t n, Py_ssize_t r, double *inv)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t lo = i - r < 0 ? 0 : i - r, hi = i + r > n - 1 ? n - 1 : i + r;
        inv[i] = 1.0 / (double)(hi - lo + 1);
    }
}

static int count_filter(const float *guide, const float *p, float *q, float *a, float *b,
                        Py_ssize_t H, Py_ssize_t W, Py_ssize_t r, double eps, double centre)
{
    /* A window reaching past both ends of an axis already holds all of it: along each axis a
       larger radius gives the same sums and counts, and a radius cut to the axis bounds the
       padding and the work. */
    Py_ssize_t r_rows = r < H - 1 ? r : H - 1, r_cols = r < W - 1 ? r : W - 1;
    Py_ssize_t Wp = W + 2 * r_cols + 2;            /* a padded row of column sums */
    double *memory = calloc((size_t)(6 * Wp + 6 * W + H + W), sizeof(double));
    if (memory == NULL)
        return -1;
    /* Column sums over the rows of the current window: I, p, I p, I^2, then a, b. */
    double *c_I = memory + r_cols + 1, *c_p = c_I + Wp, *c_Ip = c_p + Wp, *c_II = c_Ip + Wp;
    double *c_a = c_II + Wp, *c_b = c_a + Wp;
    double *s_I = memory + 6 * Wp, *s_p = s_I + W, *s_Ip = s_p + W, *s_II = s_Ip + W;
    double *s_a = s_II + W, *s_b = s_a + W;
    double *inv_rows = s_b + W, *inv_cols = inv_rows + H;
    inverse_counts(H, r_rows, inv_rows);
    inverse_counts(W, r_cols, inv_cols);

    /* Stage 1: the window sums of I, p, I p, I^2 -> a, b. The column sums start with rows
       0 .. r - 1; row i then takes row i + r in and drops row i - r - 1 (r here is r_rows). */
    for (Py_ssize_t k = 0; k < r_rows; k++)
        columns4(guide + k * W, p + k * W, NULL, NULL, centre, W, c_I, c_p, c_Ip, c_II);
    for (Py_ssize_t i = 0; i < H; i++) {
        Py_ssize_t enter = i + r_rows, leave = i - r_rows - 1;
        columns4(enter < H ? guide + enter * W : NULL, enter < H ? p + enter * W : NULL,
                 leave >= 0 ? guide + leave * W : NULL, leave >= 0 ? p + leave * W : NULL,
                 centre, W, c_I, c_p, c_Ip, c_II);
        row_sums4(c_I, c_p, c_Ip, c_II, W, r_cols, s_I, s_p, s_Ip, s_II);
        coefficients(s_I, s_p, s_Ip, s_II, inv_rows[i], inv_cols, eps, W, a + i * W, b + i * W);
    }

    /* Stage 2: the window sums of a and b -> q = mean_a I + mean_b. */
    for (Py_ssize_t k = 0; k < r_rows; k++)
        columns2(a + k * W, b + k * W, NULL, NULL, W, c_a, c_b);
    for (Py_ssize_t i = 0; i < H; i++) {
        Py_ssize_t enter = i + r_rows, leave = i - r_rows - 1;
        columns2(enter < H ? a + enter * W : NULL, enter < H ? b + enter * W : NULL,
                 leave >= 0 ? a + leave * W : NULL, leave >= 0 ? b + leave * W : NULL, W, c_a, c_b);
        row_sums2(c_a, c_b, W, r_cols, s_a, s_b);
        output(s_a, s_b, guide + i * W, centre, inv_rows[i], inv_cols, W, q + i * W);
    }
    free(memory);
    return 0;
}

/* A C-contiguous float32 buffer of the object, writable when asked; 0 on success. */
static int float_buffer(PyObject *obj, Py_buffer *view, int writable, const char *name)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) != 0) {
        PyErr_Format(PyExc_ValueError, "%s must be a%s C-contiguous float32 buffer", name,
                     writable ? " writable" : "");
        return -1;
    }
    if (view->itemsize != 4 || view->format == NULL || strcmp(view->format, "f") != 0) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_ValueError, "%s must hold float32 values", name);
        return -1;
    }
    return 0;
}

static PyObject *gf_filter(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *guide_obj, *src_obj, *out_obj, *scratch_obj;
    Py_ssize_t radius;
    double eps, centre;
    if (!PyArg_ParseTuple(args, "OOOOndd:filter", &guide_obj, &src_obj, &out_obj, &scratch_obj,
                          &radius, &eps, &centre))
        return NULL;
    if (radius < 0 || !(eps > 0.0) || !isfinite(eps)) {
        PyErr_SetString(PyExc_ValueError, "radius must be >= 0 and eps finite and > 0");
        return NULL;
    }
    Py_buffer guide, src, out, scratch;
    if (float_buffer(guide_obj, &guide, 0, "guide") != 0)
        return NULL;
    if (float_buffer(src_obj, &src, 0, "src") != 0) {
        PyBuffer_Release(&guide);
        return NULL;
    }
    if (float_buffer(out_obj, &out, 1, "out") != 0) {
        PyBuffer_Release(&guide);
        PyBuffer_Release(&src);
        return NULL;
    }
    if (float_buffer(scratch_obj, &scratch, 1, "scratch") != 0) {
        PyBuffer_Release(&guide);
        PyBuffer_Release(&src);
        PyBuffer_Release(&out);
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t H = guide.ndim == 2 ? guide.shape[0] : 0, W = guide.ndim == 2 ? guide.shape[1] : 0;
    if (guide.ndim != 2 || H < 1 || W < 1
            || src.ndim != 2 || src.shape[0] != H || src.shape[1] != W
            || out.ndim != 2 || out.shape[0] != H || out.shape[1] != W) {
        PyErr_SetString(PyExc_ValueError, "guide, src and out must be (H, W) arrays of one shape, H, W >= 1");
    } else if (scratch.len / 4 < 2 * H * W) {
        PyErr_SetString(PyExc_ValueError, "scratch must hold at least 2 H W float32 values");
    } else {
        int status;
        float *a = (float *)scratch.buf;
        Py_BEGIN_ALLOW_THREADS
        status = count_filter((const float *)guide.buf, (const float *)src.buf, (float *)out.buf,
                              a, a + H * W, H, W, radius, eps, centre);
        Py_END_ALLOW_THREADS
        if (status != 0)
            PyErr_NoMemory();
        else
            result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&guide);
    PyBuffer_Release(&src);
    PyBuffer_Release(&out);
    PyBuffer_Release(&scratch);
    return result;
}

static PyMethodDef methods[] = {
    {"filter", gf_filter, METH_VARARGS,
     "filter(guide, src, out, scratch, radius, eps, centre): the count-border guided filter of one "
     "gray image into out (float32 buffers; see paperlib.refine.gf_image.guided_filter_image)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_gf_count",
    "The count-border guided filter in C (paperlib.refine.gf_image takes it when it was built).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__gf_count(void)
{
    return PyModule_Create(&module);
}
