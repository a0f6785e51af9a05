"""`safebench calibrate`: how well judges (the jury, each juror, stored judges) agree with humans."""
