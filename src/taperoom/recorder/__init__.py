"""The recorder app: scheduled internet-radio recording to tagged MP3, with upload."""
