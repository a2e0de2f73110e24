# Runs INSIDE GIMP 3 with its GUI (under Xvfb), started by tests/gimp/screenshots.sh.
# 1. opens the portrait + background in a window and runs Relight non-interactively, so the
#    Layers dock shows the result stack; writes $RELIGHT_SHOT_DIR/layers.ready;
# 2. waits for the shell to take that screenshot, then opens the plug-in's dialog (interactive
#    run) and writes dialog.ready; the shell screenshots it and ends GIMP.
import json
import os
import time

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, Gio  # noqa: E402

SHOTS = os.environ["RELIGHT_SHOT_DIR"]
JOB = json.load(open(os.environ["RELIGHT_GIMP_JOB"]))


def mark(name):
    open(os.path.join(SHOTS, name), "w").close()


def wait_for(name, seconds=120):
    deadline = time.monotonic() + seconds
    while not os.path.exists(os.path.join(SHOTS, name)) and time.monotonic() < deadline:
        time.sleep(0.2)


image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(JOB["portrait"]))
portrait = image.get_layers()[0]
portrait.set_name("Portrait")
background = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, image,
                                  Gio.File.new_for_path(JOB["background"]))
background.set_name("Background")
image.insert_layer(background, None, 1)
background.scale(image.get_width(), image.get_height(), False)
image.set_selected_layers([portrait])
Gimp.Display.new(image)
Gimp.displays_flush()

procedure = Gimp.get_pdb().lookup_procedure("plug-in-relight-portrait")
config = procedure.create_config()
config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
config.set_property("image", image)
config.set_core_object_array("drawables", [portrait])
config.set_property("output-normals", True)
values = procedure.run(config)
print("relight:", values.index(0), flush=True)
Gimp.displays_flush()
mark("layers.ready")
wait_for("layers.done")

config = procedure.create_config()
config.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
config.set_property("image", image)
config.set_core_object_array("drawables", [portrait])
mark("dialog.ready")
procedure.run(config)  # blocks on the dialog until the shell ends GIMP
