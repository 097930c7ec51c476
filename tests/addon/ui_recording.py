"""A stand-in for bpy.types.UILayout (which Python cannot create in the
background) that runs a draw function and checks every call against Blender's
own description of UILayout: keyword arguments must be parameters of that
UILayout function, icons must be real icons, operators must exist (and the
properties set on them must be theirs), properties must be real RNA
properties, lists must be registered UIList classes."""
from __future__ import annotations

from types import SimpleNamespace


def _layout_rna():
    import bpy

    return bpy.types.UILayout.bl_rna


def _check_call(function: str, kwargs: dict) -> None:
    parameters = _layout_rna().functions[function].parameters
    for name, value in kwargs.items():
        assert name in parameters, "UILayout.{}() has no parameter {!r}".format(function, name)
        if name == "icon":
            assert value in parameters["icon"].enum_items.keys(), "unknown icon {!r}".format(value)


class OperatorProperties:
    """What ``layout.operator()`` returns: setting a property checks that the
    operator has it."""

    def __init__(self, rna_type, log: list, idname: str):
        object.__setattr__(self, "_rna_type", rna_type)
        object.__setattr__(self, "_log", log)
        object.__setattr__(self, "_idname", idname)

    def __setattr__(self, name, value):
        assert name in self._rna_type.properties, "{} has no property {!r}".format(self._idname, name)
        self._log.append(("operator_property", self._idname, name, value))


class RecordingLayout:
    def __init__(self, log=None):
        object.__setattr__(self, "log", log if log is not None else [])

    def __setattr__(self, name, value):
        assert name in _layout_rna().properties, "UILayout has no attribute {!r}".format(name)
        object.__setattr__(self, name, value)

    def _child(self, function: str, kwargs: dict) -> "RecordingLayout":
        _check_call(function, kwargs)
        return RecordingLayout(self.log)

    def column(self, **kwargs):
        return self._child("column", kwargs)

    def row(self, **kwargs):
        return self._child("row", kwargs)

    def box(self, **kwargs):
        return self._child("box", kwargs)

    def split(self, **kwargs):
        return self._child("split", kwargs)

    def label(self, **kwargs):
        _check_call("label", kwargs)
        self.log.append(("label", kwargs.get("text", "")))

    def separator(self, **kwargs):
        _check_call("separator", kwargs)

    def progress(self, **kwargs):
        _check_call("progress", kwargs)
        assert 0.0 <= kwargs.get("factor", 0.0) <= 1.0
        self.log.append(("progress", kwargs.get("factor"), kwargs.get("text", "")))

    def template_icon(self, **kwargs):
        _check_call("template_icon", kwargs)
        assert isinstance(kwargs.get("icon_value"), int)
        self.log.append(("template_icon", kwargs["icon_value"], kwargs.get("scale", 1.0)))

    def operator(self, idname, **kwargs):
        import bpy

        _check_call("operator", kwargs)
        category, name = idname.split(".")
        assert hasattr(getattr(bpy.ops, category), name), idname
        rna_type = getattr(getattr(bpy.ops, category), name).get_rna_type()
        self.log.append(("operator", idname, kwargs.get("text", "")))
        return OperatorProperties(rna_type, self.log, idname)

    def prop(self, data, attribute, **kwargs):
        _check_call("prop", kwargs)
        assert attribute in data.bl_rna.properties, attribute
        self.log.append(("prop", attribute))

    def template_list(self, listtype_name, list_id, dataptr, propname, active_dataptr, active_propname,
                      **kwargs):
        import bpy

        _check_call("template_list", kwargs)
        assert getattr(bpy.types, listtype_name, None) is not None, listtype_name
        assert issubclass(getattr(bpy.types, listtype_name), bpy.types.UIList), listtype_name
        assert propname in dataptr.bl_rna.properties and active_propname in active_dataptr.bl_rna.properties
        self.log.append(("template_list", listtype_name, propname))


def draw(panel_class, context) -> list:
    """Runs ``panel_class.draw`` on a RecordingLayout; returns what it drew."""
    layout = RecordingLayout()
    panel_class.draw(SimpleNamespace(layout=layout), context)
    return layout.log


def labels(log) -> list:
    return [entry[1] for entry in log if entry[0] == "label"]


def draw_list_items(list_class, context, data, propname: str) -> list:
    """Runs a UIList's ``draw_item`` for every item of ``data.<propname>``."""
    log = []
    for index, item in enumerate(getattr(data, propname)):
        list_class.draw_item(SimpleNamespace(), context, RecordingLayout(log), data, item, 0, data,
                             "active_job_index", index)
    return log
