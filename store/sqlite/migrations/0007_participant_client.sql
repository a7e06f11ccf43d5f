-- What a participant's client said of itself when it joined (the API's
-- ispName, osName, osVersion, browserName, browserVersion, sdkVersion),
-- '' where it said nothing.

ALTER TABLE participants ADD COLUMN isp_name TEXT NOT NULL DEFAULT '';
ALTER TABLE participants ADD COLUMN os_name TEXT NOT NULL DEFAULT '';
ALTER TABLE participants ADD COLUMN os_version TEXT NOT NULL DEFAULT '';
ALTER TABLE participants ADD COLUMN browser_name TEXT NOT NULL DEFAULT '';
ALTER TABLE participants ADD COLUMN browser_version TEXT NOT NULL DEFAULT '';
ALTER TABLE participants ADD COLUMN sdk_version TEXT NOT NULL DEFAULT '';
