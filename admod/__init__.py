"""admod: the ad-moderation pipeline.

The modules of this folder are the logic, with no KFP imports: storage, images, split, model,
training, evaluation, registry, ... . The KFP layers are installed into the same package from
their own folders: admod.components (components/) and admod.pipeline (pipeline/).
"""
