"""stub"""


def register(app, settings):
    pass
