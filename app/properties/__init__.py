"""Properties as an event-sourced aggregate: the rules (``aggregate``), their store
(``app.tables.properties``) and the stage that applies ``property.events``
(``app.stages.properties``)."""
