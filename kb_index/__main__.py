from kb_index.cli import app

app(prog_name="python -m kb_index")
