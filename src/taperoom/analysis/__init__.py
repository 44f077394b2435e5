"""Music analysis: tempo, beats, key, loudness, characteristics and waveforms of a track.

Pure DSP over decoded PCM (arrays in, arrays out), fed block by block from one
decoding pass (:mod:`taperoom.analysis.decode`) so that memory stays bounded;
:func:`taperoom.analysis.analyzer.analyze_file` runs the whole analysis of a file.
"""
