"""Example "user code" for modelport's demo, benchmarks and notebooks.

Nothing here is part of modelport: it is the kind of training code a data scientist writes before
calling ``modelport.register``. It lives outside ``src/modelport`` so that the framework imports
it needs (scikit-learn) stay out of the package.
"""
