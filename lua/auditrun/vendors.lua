-- auditrun.vendors: the vendors auditrun has clients for, each a module
-- auditrun.<name> with its settings schema in auditrun.<name>.settings.
-- Generic code (configuration, the activity timeline) walks this list
-- instead of naming a vendor.
return { "insights", "dealcloud", "exavault" }
