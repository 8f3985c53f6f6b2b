"""The alert channels that ship with leadscore; each module offers one `ChannelType`."""
