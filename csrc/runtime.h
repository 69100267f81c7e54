/* Runtime queries and thread control of the C extension. */
int gb_cpu_has_avx2_fma(void);   /* 1 if the AVX2+FMA kernels are used on this CPU */
int gb_omp_max_threads(void);    /* OpenMP threads a parallel region will use (1 without OpenMP) */
void gb_set_num_threads(int n);  /* omp_set_num_threads(n) */
int gb_has_openmp(void);         /* 1 if compiled with OpenMP */
int gb_malloc_keep_freed(int64_t mmap_threshold, int64_t trim_threshold);  /* glibc mallopt; 1 if applied */
