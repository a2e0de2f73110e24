#!/usr/bin/env python3
"""Relight Portrait… for GIMP 3 (Filters ▸ Light and Shadow).

The selected layer is the portrait; the background is a layer (default: the one right below the
portrait) or an HDR panorama file. A selection, if there is one, says where the person is: the
cut-out stays inside it (the way a GIMP filter works inside the selection); a layer mask on the
portrait counts as the layer's transparency (used as the matte). The heavy work
runs in Relight's worker process (its own Python with numpy and onnxruntime, see
docs/worker-protocol.md); this file only moves pixels between GEGL buffers and raw files and
builds the result layers:

    Relight                      (layer group, above the portrait, one undo step)
      Normals                    optional, hidden; (n + 1) / 2 as data
      Relit                      the relit person; layer mask = the alpha matte
      Relit as layers            group, hidden, same mask; renders the same as Relit:
        Specular                   Addition
        Shading over 1             Addition, integer images only: albedo × max(shading − 1, 0)
        Shading                    Multiply (diffuse light, E(n)/π)
        Albedo                     Normal
      Composite                  relit over the background, in linear light

Integer (8/16-bit) layers cannot hold shading above 1, which bright light produces. Instead of
clipping it (and breaking albedo × shading + specular = relit) the part above 1 goes to its own
Addition layer, "Shading over 1" = albedo × max(shading − 1, 0); the Shading layer keeps
min(shading, 1). Float images store shading as it is and get no such layer. All new layers blend
and composite in linear RGB, so the stack adds up in linear light, like the pipeline.
"""

from __future__ import annotations

import os
import shutil
import sys
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

try:  # installed: the installer copies relight_core/client.py beside this file
    import relight_client
except ImportError:  # running from a checkout
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    from relight_core import client as relight_client

PROCEDURE = "plug-in-relight-portrait"
MAX_MEGAPIXELS = 100.0
GROUP_NAME = "Relight"
INTRINSICS_GROUP_NAME = "Relit as layers"


class UserError(Exception):
    """A problem the user can fix; its text is shown as is."""


# --------------------------------------------------------------------------- pure helpers


class PixelFormat:
    """How pixels of an image of a given precision travel: raw file format + Babl formats."""

    def __init__(self, dtype: str, encoding: str, colour: str, mask: str, integer: bool):
        self.dtype, self.encoding = dtype, encoding
        self.colour, self.mask, self.integer = colour, mask, integer


def pixel_format(precision) -> PixelFormat:
    """8/16-bit images travel as integers in their own transfer curve (no precision lost);
    32-bit integer, half, float and double images as linear float32."""
    name = precision.value_nick if hasattr(precision, "value_nick") else str(precision)
    name = name.lower().replace("_", "-")
    linear = name.endswith("linear") and "non-linear" not in name
    prime = "" if linear else "'"
    encoding = "linear" if linear else "srgb"
    if name.startswith("u8"):
        return PixelFormat("u8", encoding, f"R{prime}G{prime}B{prime}A u8", "Y u8", True)
    if name.startswith("u16"):
        return PixelFormat("u16", encoding, f"R{prime}G{prime}B{prime}A u16", "Y u16", True)
    return PixelFormat("f32", "linear", "RGBA float", "Y float", False)


def layer_below(portrait):
    """The layer right below ``portrait`` among its siblings, or None."""
    parent = portrait.get_parent()
    siblings = parent.get_children() if parent is not None else portrait.get_image().get_layers()
    ids = [layer.get_id() for layer in siblings]
    position = ids.index(portrait.get_id())
    return siblings[position + 1] if position + 1 < len(siblings) else None


def output_plan(options: dict, integer: bool, shading_over_max: float) -> list[tuple]:
    """(name, worker layer, layer mode, visible, in the intrinsics group) from top to bottom."""
    plan = []
    if options["output_normals"]:
        plan.append(("Normals", "normals", "NORMAL", False, False))
    plan.append(("Relit", "relit", "NORMAL", True, False))
    if options["output_intrinsics"]:
        plan.append(("Specular", "specular", "ADDITION", True, True))
        if integer and shading_over_max > 0:
            plan.append(("Shading over 1", "shading_over", "ADDITION", True, True))
        plan.append(("Shading", "shading", "MULTIPLY", True, True))
        plan.append(("Albedo", "albedo", "NORMAL", True, True))
    if options["output_composite"]:
        plan.append(("Composite", "composite", "NORMAL", True, False))
    return plan


def worker_layers(options: dict, integer: bool) -> list[str]:
    wanted = ["alpha", "relit"]
    if options["output_intrinsics"]:
        wanted += ["albedo", "shading", "specular"] + (["shading_over"] if integer else [])
    if options["output_normals"]:
        wanted.append("normals")
    if options["output_composite"]:
        wanted.append("composite")
    return wanted


def read_options(config) -> dict:
    hdri = config.get_property("hdri-file")
    return {
        "background": config.get_property("background-layer"),
        "hdri": hdri.get_path() if hdri is not None else None,
        "settings": {
            "rotate_deg": float(config.get_property("rotation")),
            "strength": float(config.get_property("strength")),
            "shininess": float(config.get_property("shininess")),
            "keep_original": float(config.get_property("keep-original")),
            "edge_refine": bool(config.get_property("edge-refine")),
        },
        "output_intrinsics": bool(config.get_property("output-intrinsics")),
        "output_normals": bool(config.get_property("output-normals")),
        "output_composite": bool(config.get_property("output-composite")),
    }


# --------------------------------------------------------------------------- GIMP side


def check_inputs(image, drawables, options: dict):
    """The portrait layer and the background layer (or None with an HDRI); UserError if not."""
    if image.get_base_type() != Gimp.ImageBaseType.RGB:
        raise UserError("Relight needs an RGB image: choose Image ▸ Mode ▸ RGB, then run it "
                        "again (greyscale and indexed images cannot hold the coloured light).")
    if len(drawables) != 1:
        raise UserError("Select exactly one layer: the portrait.")
    portrait = drawables[0]
    if not portrait.is_layer() or portrait.is_group_layer():
        raise UserError("Select the portrait's pixel layer (not a mask, channel or group).")
    width, height = portrait.get_width(), portrait.get_height()
    if width * height > MAX_MEGAPIXELS * 1e6:
        raise UserError(f"The portrait layer is {width * height / 1e6:.0f} megapixels; Relight "
                        f"handles at most {MAX_MEGAPIXELS:.0f}. Scale it down "
                        "(Image ▸ Scale Image) and run it again.")
    if not Gimp.Selection.is_empty(image) and not portrait.mask_intersect()[0]:
        raise UserError("The selection does not touch the portrait layer: select the person "
                        "(or Select ▸ None to use the whole layer) and run it again.")
    if options["hdri"]:
        if not os.path.isfile(options["hdri"]):
            raise UserError(f"The HDR panorama {options['hdri']} does not exist.")
        return portrait, None
    background = options["background"]
    if background is not None and (not background.is_valid()
                                   or background.get_image().get_id() != image.get_id()):
        background = None
    background = background or layer_below(portrait)
    if background is None:
        raise UserError("Put the new background as a layer below the portrait, or choose a "
                        "background layer or an HDR panorama in the dialog.")
    if background.get_id() == portrait.get_id():
        raise UserError("The background layer must not be the portrait layer itself.")
    if background.is_group_layer():
        raise UserError("The background must be a pixel layer, not a group.")
    return portrait, background


def region_under(portrait, background) -> list[int] | None:
    """[x, y, w, h] of the background (in its own pixels) that lies under the portrait, when the
    background covers the portrait completely; None otherwise (then it is scaled to cover)."""
    px, py = portrait.get_offsets()[-2:]
    bx, by = background.get_offsets()[-2:]
    x, y = px - bx, py - by
    width, height = portrait.get_width(), portrait.get_height()
    if x < 0 or y < 0 or x + width > background.get_width() \
            or y + height > background.get_height():
        return None
    return [x, y, width, height]


def export_selection(image, portrait, fmt: PixelFormat, path: str) -> dict | None:
    """The image's selection over the portrait layer as a one-channel raw file (coverage, the
    matte's format); None when nothing is selected. The person is cut out inside it only, as a
    GIMP filter works inside the selection (``check_inputs`` made sure it touches the layer)."""
    if Gimp.Selection.is_empty(image):
        return None
    x, y = portrait.get_offsets()[-2:]  # the selection has the image's coordinates
    return export_coverage(image.get_selection(), (x, y, portrait.get_width(),
                                                   portrait.get_height()), fmt, path)


def export_layer_mask(layer, fmt: PixelFormat, path: str) -> dict | None:
    """The layer's mask as a one-channel raw file, or None when it has none (or it is turned
    off). The worker multiplies it into the layer's alpha: the portrait as the user sees it."""
    mask = layer.get_mask()
    if mask is None or not layer.get_apply_mask():
        return None
    return export_coverage(mask, (0, 0, layer.get_width(), layer.get_height()), fmt, path)


def export_coverage(drawable, rect: tuple, fmt: PixelFormat, path: str) -> dict:
    """One channel of coverage (a selection, a mask) over ``rect`` (x, y, w, h in the
    drawable's own pixels; nothing beyond its edges) to a raw "Y" file; its descriptor."""
    x, y, width, height = rect
    data = drawable.get_buffer().get(Gegl.Rectangle.new(x, y, width, height), 1.0, fmt.mask,
                                     Gegl.AbyssPolicy.NONE)
    descriptor = relight_client.pixel_descriptor(path, width, height, fmt.dtype, "linear", "Y")
    relight_client.write_pixels(descriptor, bytes(data))
    return descriptor


def export_layer(layer, fmt: PixelFormat, path: str) -> dict:
    """Write the layer's pixels (RGBA, straight alpha) to a raw file; its descriptor."""
    width, height = layer.get_width(), layer.get_height()
    buffer = layer.get_buffer()
    data = buffer.get(Gegl.Rectangle.new(0, 0, width, height), 1.0, fmt.colour,
                      Gegl.AbyssPolicy.CLAMP)
    descriptor = relight_client.pixel_descriptor(path, width, height, fmt.dtype, fmt.encoding,
                                                 "RGBA")
    relight_client.write_pixels(descriptor, bytes(data))
    return descriptor


def fill_drawable(drawable, descriptor: dict, babl_format: str) -> None:
    width, height = descriptor["width"], descriptor["height"]
    buffer = drawable.get_buffer()
    buffer.set(Gegl.Rectangle.new(0, 0, width, height), babl_format,
               relight_client.read_pixels(descriptor))
    buffer.flush()
    drawable.update(0, 0, width, height)


def new_layer(image, name: str, descriptor: dict, mode: str, fmt: PixelFormat):
    layer = Gimp.Layer.new(image, name, descriptor["width"], descriptor["height"],
                           Gimp.ImageType.RGBA_IMAGE, 100.0, getattr(Gimp.LayerMode, mode))
    layer.set_blend_space(Gimp.LayerColorSpace.RGB_LINEAR)
    layer.set_composite_space(Gimp.LayerColorSpace.RGB_LINEAR)
    return layer


def add_matte_mask(layer, descriptor: dict, fmt: PixelFormat) -> None:
    mask = layer.create_mask(Gimp.AddMaskType.WHITE)
    layer.add_mask(mask)
    fill_drawable(mask, descriptor, fmt.mask)


def build_layers(image, portrait, result: dict, options: dict, fmt: PixelFormat):
    """Create the "Relight" group above the portrait; returns it."""
    files = result["layers"]
    over_max = files.get("shading_over", {}).get("max", 0.0)
    plan = output_plan(options, fmt.integer, over_max)
    x, y = portrait.get_offsets()[-2:]
    parent = portrait.get_parent()
    group = Gimp.GroupLayer.new(image, GROUP_NAME)
    image.insert_layer(group, parent, image.get_item_position(portrait))
    try:
        fill_group(image, group, plan, files, (x, y), fmt)
    except Exception:
        image.remove_layer(group)  # never leave half a result in the user's image
        raise
    return group


def fill_group(image, group, plan: list[tuple], files: dict, offsets: tuple, fmt: PixelFormat):
    intrinsics = None
    position = 0
    for name, source, mode, visible, in_intrinsics in plan:
        descriptor = files[source]
        layer = new_layer(image, name, descriptor, mode, fmt)
        if in_intrinsics:
            if intrinsics is None:
                intrinsics = Gimp.GroupLayer.new(image, INTRINSICS_GROUP_NAME)
                intrinsics.set_composite_space(Gimp.LayerColorSpace.RGB_LINEAR)
                image.insert_layer(intrinsics, group, position)
                position += 1
                intrinsics.set_visible(False)  # Relit already shows this sum
            image.insert_layer(layer, intrinsics, len(intrinsics.get_children()))
        else:
            image.insert_layer(layer, group, position)
            position += 1
        layer.set_offsets(*offsets)
        fill_drawable(layer, descriptor, fmt.colour)
        layer.set_visible(visible)
        if name == "Relit":
            add_matte_mask(layer, files["alpha"], fmt)
    if intrinsics is not None:
        add_matte_mask(intrinsics, files["alpha"], fmt)


class Progress:
    def __init__(self):
        Gimp.progress_init("Relight: starting the worker…")

    def __call__(self, stage: str, fraction: float, message: str) -> None:
        Gimp.progress_set_text(f"Relight: {message or stage}")
        Gimp.progress_update(max(0.0, min(1.0, fraction)))


def relight_image(image, drawables, options: dict, client_factory=None) -> object:
    """The whole job; raises UserError or relight_client.WorkerError with a user message."""
    portrait, background = check_inputs(image, drawables, options)
    fmt = pixel_format(image.get_precision())
    folder = relight_client.private_dir()
    try:
        progress = Progress()
        request = {
            "portrait": export_layer(portrait, fmt, os.path.join(folder, "portrait.raw")),
            "settings": options["settings"],
            "layers": worker_layers(options, fmt.integer),
            "output": {"dir": folder, "dtype": fmt.dtype, "encoding": fmt.encoding,
                       "channel_order": "RGBA", "alpha": "opaque"},
        }
        selection = export_selection(image, portrait, fmt, os.path.join(folder, "selection.raw"))
        if selection is not None:
            request["selection"] = selection
        layer_mask = export_layer_mask(portrait, fmt, os.path.join(folder, "portrait_mask.raw"))
        if layer_mask is not None:
            request["portrait_mask"] = layer_mask
        if background is not None:
            request["background"] = export_layer(background, fmt,
                                                 os.path.join(folder, "background.raw"))
            region = region_under(portrait, background)
            if region is not None:  # the composite shows what lies under the portrait
                request["background_region"] = region
        else:
            request["hdri"] = {"path": options["hdri"]}
        client = (client_factory or relight_client.WorkerClient)()
        try:
            result = client.request("relight", request, progress=progress)
        except relight_client.WorkerError:
            tail = getattr(client, "stderr_tail", lambda: "")()
            if tail:  # the worker's own log, for GIMP's terminal / error console
                print(f"relight worker log:\n{tail}", file=sys.stderr)
            raise
        finally:
            client.close()
        progress("layers", 1.0, "adding layers")
        image.undo_group_start()
        try:
            group = build_layers(image, portrait, result, options, fmt)
        finally:
            image.undo_group_end()
        Gimp.progress_end()
        Gimp.displays_flush()
        show_notes(result)
        return group
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def show_notes(result: dict) -> None:
    """Tell the user what the worker could not do as asked (no face found: normals from the
    silhouette only), as Krita's docker does; silent when all went as asked."""
    notes = [str(note) for note in result.get("warnings", [])]
    if notes:
        Gimp.message("Relight: " + "; ".join(notes[:3]))


def error_values(procedure, message: str):
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))


def show_dialog(procedure, image, drawables, config) -> bool:
    gi.require_version("GimpUi", "3.0")
    from gi.repository import GimpUi

    GimpUi.init(PROCEDURE)
    chosen = config.get_property("background-layer")
    if (chosen is None or not chosen.is_valid()) and len(drawables) == 1:
        below = layer_below(drawables[0])
        if below is not None:
            config.set_property("background-layer", below)
    dialog = GimpUi.ProcedureDialog.new(procedure, config, "Relight Portrait")
    dialog.fill(["background-layer", "hdri-file", "rotation", "strength", "shininess",
                 "keep-original", "edge-refine", "output-intrinsics", "output-normals",
                 "output-composite"])
    accepted = dialog.run()
    dialog.destroy()
    return bool(accepted)


def run(procedure, run_mode, image, drawables, config, data):
    try:
        if run_mode == Gimp.RunMode.INTERACTIVE and not show_dialog(procedure, image, drawables,
                                                                    config):
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        relight_image(image, drawables, read_options(config))
        return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())
    except UserError as exc:
        return error_values(procedure, str(exc))
    except relight_client.WorkerError as exc:
        if exc.code == "no_person":
            return error_values(procedure, f"No person found in the portrait layer ({exc}).")
        return error_values(procedure, f"Relight: {exc}")
    except Exception as exc:  # never a traceback dialog: log it, show one line
        traceback.print_exc(file=sys.stderr)
        return error_values(procedure, f"Relight failed unexpectedly ({type(exc).__name__}: "
                                       f"{exc}); details are in GIMP's error console/terminal.")


class RelightPlugIn(Gimp.PlugIn):
    def do_set_i18n(self, name):
        return False

    def do_query_procedures(self):
        return [PROCEDURE]

    def do_create_procedure(self, name):
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        procedure.set_image_types("*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label("Relight Portrait…")
        procedure.add_menu_path("<Image>/Filters/Light and Shadow")
        procedure.set_documentation(
            "Relight the person in the selected layer to match a new background",
            "Cuts the person out of the selected layer (inside the selection, if there is "
            "one; a layer that is transparent or has a layer mask keeps its own matte) and "
            "relights them with the light of the "
            "background layer (default: the layer below) or of an HDR panorama. Adds a "
            "'Relight' layer group: relit person with the alpha matte as mask, albedo, shading "
            "and specular layers that add up to it, optional normals, and the composite.",
            name)
        procedure.set_attribution("Relight contributors", "Relight contributors", "2026")
        flags = GObject.ParamFlags.READWRITE
        procedure.add_layer_argument("background-layer", "_Background layer",
                                     "The new background (default: the layer below)", True,
                                     flags)
        procedure.add_file_argument("hdri-file", "_HDR panorama (optional)",
                                    "An equirectangular .hdr/.exr used instead of the layer",
                                    Gimp.FileChooserAction.OPEN, True, None, flags)
        procedure.add_double_argument("rotation", "Light ro_tation (°)",
                                      "Turn the light around the person", -180.0, 180.0, 0.0,
                                      flags)
        procedure.add_double_argument("strength", "Light stren_gth", "Light strength",
                                      0.0, 4.0, 1.0, flags)
        procedure.add_double_argument("shininess", "Sh_ininess", "Specular amount",
                                      0.0, 1.0, 0.3, flags)
        procedure.add_double_argument("keep-original", "_Keep original light",
                                      "How much of the original lighting to keep", 0.0, 1.0, 0.0,
                                      flags)
        procedure.add_boolean_argument("edge-refine", "Refine matte _edges (hair)",
                                       "Closed-form matting of the edges", True, flags)
        procedure.add_boolean_argument("output-intrinsics", "Albedo, shading, specular la_yers",
                                       "Add the layers that add up to the relit person", True,
                                       flags)
        procedure.add_boolean_argument("output-normals", "Nor_mals layer",
                                       "Add the surface normals as a layer", False, flags)
        procedure.add_boolean_argument("output-composite", "Com_posite layer",
                                       "Add the relit person over the background", True, flags)
        return procedure


if __name__ == "__main__":
    Gimp.main(RelightPlugIn.__gtype__, sys.argv)
