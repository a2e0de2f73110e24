# Runs INSIDE real GIMP 3 (gimp-console-3 --batch-interpreter=python-fu-eval), started by
# tests/test_gimp_host.py. Standard library + GIMP's GObject bindings only (no numpy in GIMP's
# Python): it builds images, calls plug-in-relight-portrait through the PDB, and writes what it
# sees (layer tree, return status and message, hashes of the user's layers, raw pixel dumps) to
# $RELIGHT_GIMP_OUT for the pytest side to check with numpy.
#
# It is exec()'d by python-fu-eval, so everything lives in one function namespace.
import hashlib
import json
import os
import time
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

JOB = json.load(open(os.environ["RELIGHT_GIMP_JOB"]))
OUT = JOB["out"]
PROCEDURE = "plug-in-relight-portrait"
RESULTS = {"cases": {}}


def load_layer(image, path, name, position):
    layer = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(path))
    layer.set_name(name)
    image.insert_layer(layer, None, position)
    return layer


def build_image(case):
    """Portrait over a background; canvas padded so the layers sit at non-zero offsets."""
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(JOB["portrait"]))
    portrait = image.get_layers()[0]
    portrait.set_name("Portrait")
    width, height = image.get_width(), image.get_height()
    scale = min(1.0, JOB["long_side"] / max(width, height))
    width, height = round(width * scale), round(height * scale)
    image.scale(width, height)
    background = load_layer(image, case.get("background", JOB["background"]), "Background", 1)
    if case.get("background_fit", True):
        background.scale(width, height, False)
    pad_x, pad_y = JOB["pad"]
    image.resize(width + 2 * pad_x, height + 2 * pad_y, pad_x, pad_y)
    if case.get("background_canvas"):  # a background bigger than the portrait, under all of it
        background.scale(image.get_width(), image.get_height(), False)
        background.set_offsets(0, 0)
    if case.get("precision"):
        image.convert_precision(getattr(Gimp.Precision, case["precision"]))
    return image, portrait, background


def layer_hash(layer):
    if layer.get_width() * layer.get_height() > 4e6:  # a huge test layer: its size will do
        return f"{layer.get_width()}x{layer.get_height()}"
    rect = Gegl.Rectangle.new(0, 0, layer.get_width(), layer.get_height())
    data = layer.get_buffer().get(rect, 1.0, "RGBA float", Gegl.AbyssPolicy.CLAMP)
    return hashlib.sha1(bytes(data)).hexdigest()


def describe(layer):
    offsets = layer.get_offsets()
    info = {
        "name": layer.get_name(),
        "group": bool(layer.is_group_layer()),
        "visible": bool(layer.get_visible()),
        "mode": layer.get_mode().value_nick,
        "offsets": [offsets[-2], offsets[-1]],
        "size": [layer.get_width(), layer.get_height()],
        "bpp": layer.get_bpp(),
        "mask": layer.get_mask() is not None,
        "blend_space": layer.get_blend_space().value_nick,
        "composite_space": layer.get_composite_space().value_nick,
    }
    if layer.is_group_layer():
        info["children"] = [describe(child) for child in layer.get_children()]
    return info


def top_level(image):
    return [{"name": layer.get_name(), "hash": layer_hash(layer)} for layer in image.get_layers()]


def find(layers, name):
    for layer in layers:
        if layer.get_name() == name:
            return layer
        if layer.is_group_layer():
            found = find(layer.get_children(), name)
            if found is not None:
                return found
    return None


def dump(case_name, drawable, label, babl_format):
    rect = Gegl.Rectangle.new(0, 0, drawable.get_width(), drawable.get_height())
    data = bytes(drawable.get_buffer().get(rect, 1.0, babl_format, Gegl.AbyssPolicy.CLAMP))
    path = os.path.join(OUT, f"{case_name}-{label}.raw")
    with open(path, "wb") as handle:
        handle.write(data)
    return {"path": path, "format": babl_format, "width": drawable.get_width(),
            "height": drawable.get_height()}


def run_relight(image, drawables, arguments):
    procedure = Gimp.get_pdb().lookup_procedure(PROCEDURE)
    if procedure is None:
        raise RuntimeError(f"{PROCEDURE} is not registered: the plug-in did not load")
    config = procedure.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", drawables)
    for name, value in arguments.items():
        config.set_property(name, value)
    values = procedure.run(config)
    status = values.index(0)
    message = values.index(1) if values.length() > 1 else ""
    return status.value_nick, str(message or "")


def select_part(image, portrait, box):
    """Select a rectangle given as fractions (x0, y0, x1, y1) of the portrait layer."""
    x, y = portrait.get_offsets()[-2:]
    width, height = portrait.get_width(), portrait.get_height()
    x0, y0 = x + round(box[0] * width), y + round(box[1] * height)
    x1, y1 = x + round(box[2] * width), y + round(box[3] * height)
    image.select_rectangle(Gimp.ChannelOps.REPLACE, x0, y0, x1 - x0, y1 - y0)


def good_case(case):
    name = case["name"]
    image, portrait, background = build_image(case)
    if case.get("select"):
        select_part(image, portrait, case["select"])
    if case.get("layer_mask"):  # a black mask, white over a part of the portrait
        mask = portrait.create_mask(Gimp.AddMaskType.BLACK)
        portrait.add_mask(mask)
        select_part(image, portrait, case["layer_mask"])
        mask.edit_fill(Gimp.FillType.WHITE)
        Gimp.Selection.none(image)
    before = top_level(image)
    arguments = dict(case.get("arguments", {}))
    if case.get("hdri"):
        arguments["hdri-file"] = Gio.File.new_for_path(case["hdri"])
    status, message = run_relight(image, [portrait], arguments)
    result = {"status": status, "message": message, "before": before,
              "after": top_level(image) if status != "success" else None,
              "portrait": describe(portrait), "background": describe(background),
              "image_size": [image.get_width(),
                                                             image.get_height()]}
    if status != "success":
        image.delete()
        return result
    layers = image.get_layers()
    result["tree"] = [describe(layer) for layer in layers]
    result["originals_after"] = [{"name": layer.get_name(), "hash": layer_hash(layer)}
                                 for layer in layers if layer.get_name() != "Relight"]
    dumps = {"portrait": dump(name, portrait, "portrait", "RGBA float"),
             "background": dump(name, background, "background", "RGBA float")}
    for layer_name in ("Relit", "Composite", "Albedo", "Shading", "Shading over 1", "Specular",
                       "Normals"):
        layer = find(layers, layer_name)
        if layer is not None:
            dumps[layer_name] = dump(name, layer, layer_name.replace(" ", "_"), "RGBA float")
    relit = find(layers, "Relit")
    if case.get("native_format"):  # the image's own encoding, to see its precision
        dumps["Relit native"] = dump(name, relit, "Relit_native", case["native_format"])
    dumps["mask"] = dump(name, relit.get_mask(), "mask", "Y float")
    intrinsics = find(layers, "Relit as layers")
    if intrinsics is not None:
        for child in intrinsics.get_children():
            child.set_visible(True)
        intrinsics.set_visible(True)
        dumps["intrinsics_sum"] = dump(name, intrinsics, "intrinsics_sum", "RGBA float")
    result["dumps"] = dumps
    image.delete()
    return result


def bad_case(case):
    kind = case["kind"]
    image, portrait, background = build_image(case)
    target = portrait
    arguments = dict(case.get("arguments", {}))
    if kind == "empty":
        target = Gimp.Layer.new(image, "Empty", portrait.get_width(), portrait.get_height(),
                                Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
        image.insert_layer(target, None, 0)
        target.fill(Gimp.FillType.TRANSPARENT)
        arguments["background-layer"] = background
    elif kind == "greyscale":
        image.convert_grayscale()
    elif kind == "no_person":
        target = background  # the background photo has nobody in it
        flat = Gimp.Layer.new(image, "Flat", 64, 64, Gimp.ImageType.RGBA_IMAGE, 100.0,
                              Gimp.LayerMode.NORMAL)
        image.insert_layer(flat, None, 2)
        flat.fill(Gimp.FillType.WHITE)
    elif kind == "too_large":
        target = Gimp.Layer.new(image, "Huge", 10240, 10240, Gimp.ImageType.RGBA_IMAGE, 100.0,
                                Gimp.LayerMode.NORMAL)
        image.insert_layer(target, None, 0)
    elif kind == "no_background":
        image.remove_layer(background)
    elif kind == "clear_background":  # an empty layer picked as the background by mistake
        clear = Gimp.Layer.new(image, "Clear", portrait.get_width(), portrait.get_height(),
                               Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
        image.insert_layer(clear, None, 2)
        clear.fill(Gimp.FillType.TRANSPARENT)
        arguments["background-layer"] = clear
    elif kind == "selection_misses":  # a selection in the canvas's padding, off the portrait
        pad_x, pad_y = JOB["pad"]
        image.select_rectangle(Gimp.ChannelOps.REPLACE, 0, 0, pad_x // 2, pad_y // 2)
    elif kind == "face_down":  # a person whose face the detector cannot find upside down
        portrait.transform_flip_simple(Gimp.OrientationType.VERTICAL, True, 0.0)
        arguments["background-layer"] = background
    before = top_level(image)
    status, message = run_relight(image, [target], arguments)
    result = {"status": status, "message": message, "before": before, "after": top_level(image)}
    image.delete()
    return result


def main():
    config_path = JOB["config"]
    original_config = open(config_path).read()
    for case in JOB["cases"]:
        try:
            if case.get("config"):
                with open(config_path, "w") as handle:
                    json.dump(case["config"], handle)
            runner = bad_case if "kind" in case else good_case
            started = time.monotonic()
            RESULTS["cases"][case["name"]] = runner(case)
            RESULTS["cases"][case["name"]]["seconds"] = round(time.monotonic() - started, 2)
        except Exception:
            RESULTS["cases"][case["name"]] = {"status": "driver-error",
                                              "message": traceback.format_exc()}
        finally:
            with open(config_path, "w") as handle:
                handle.write(original_config)
    with open(os.path.join(OUT, "results.json"), "w") as handle:
        json.dump(RESULTS, handle, indent=1)


main()
