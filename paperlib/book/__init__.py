"""The executed notebooks as a static site (``paperlib book``).

    build    pages, index and assets
    render   notebook cells to HTML, LaTeX to MathML
"""
