/* Runtime queries and thread control of the C extension. */
int gb_cpu_has_avx2_fma(void);   /* 1 if the AVX2+FMA (or AVX-512) kernels are in use */
int gb_cpu_isa(void);            /* best ISA tier of this CPU: 0 base, 1 AVX2+FMA, 2 AVX-512 F/VL/DQ/BW */
int gb_isa(void);                /* the tier the kernels use: gb_cpu_isa() capped by gb_set_isa */
int gb_set_isa(int cap);         /* cap the tier (0, 1 or 2; clamped); returns the tier now in use */
int gb_omp_max_threads(void);    /* threads a parallel kernel uses (default: OpenMP's max, else 1) */
void gb_set_num_threads(int n);  /* set the threads of the C kernels' team (n > 0) */
int gb_has_openmp(void);         /* 1 if compiled with OpenMP */
int gb_malloc_keep_freed(int64_t mmap_threshold, int64_t trim_threshold);  /* glibc mallopt; 1 if applied */
